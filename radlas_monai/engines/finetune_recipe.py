"""The ``finetune_classification`` recipe as one Python call, for experiments that compare encoders side by side.

:func:`train_and_evaluate_classifier` runs what ``bundles/finetune_classification/configs/train.json`` and
``evaluate.json`` run (same network, loss, optimizer with layer-wise LR decay, warm-up cosine schedule, MONAI
``SupervisedTrainer`` with :class:`~radlas_monai.engines.finetune.ClassifierTrainStep`, model selection on the
validation mean AUROC, operating points chosen on validation data) without the command line, MLflow or files, and
returns the metrics. Randomness is seeded locally (a forked torch RNG for the initialisation, a seeded generator for
shuffling); the global random state is left as it was.

Example (the comparison of encoders)::

    for name, ckpt, parts in [("radlas", "pretrain/model.pt", "all"), ("vitautoenc", "vae.pt", "encoder")]:
        metrics = train_and_evaluate_classifier(train, val, test, SYNTHETIC_FINDINGS, ckpt, parts,
                                                "linear_probe", epochs=20, label_fraction=0.1)
        print(name, metrics["mean"]["auroc"])
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["train_and_evaluate_classifier", "classification_preprocessing"]

logger = logging.getLogger(__name__)


def classification_preprocessing(image_size: int = 256) -> Any:
    """The bundle's preprocessing: load (any format), resize to ``image_size``, float32, keep ``image``/``label``."""
    from monai.transforms import Compose, EnsureTyped, Resized, SelectItemsd

    from radlas_monai.data.loader import LoadRadiographd

    return Compose(
        [
            LoadRadiographd(keys="image"),
            Resized(keys="image", spatial_size=(image_size, image_size), mode="area"),
            EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
            SelectItemsd(keys=["image", "label"]),
        ]
    )


def _labelled(items: Sequence[dict], class_names: Sequence[str], multi_label: bool, source: Any) -> list[dict]:
    from radlas_monai.engines.finetune import class_target

    return [
        {
            "image": item["image"],
            "label": class_target(item, class_names, multi_label, source),
            "patient": item.get("patient"),
        }
        for item in items
    ]


def _loader(items: list[dict], image_size: int, batch_size: int, shuffle: bool, seed: int, workers: int) -> Any:
    from monai.data import CacheDataset, DataLoader

    dataset = CacheDataset(items, classification_preprocessing(image_size), cache_rate=1.0, progress=False)
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    drop_last = shuffle and len(items) > batch_size
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last, num_workers=workers
    )


def train_and_evaluate_classifier(
    train_items: Sequence[dict],
    val_items: Sequence[dict],
    test_items: Sequence[dict],
    class_names: Sequence[str],
    encoder_ckpt: str | os.PathLike | None,
    pretrained_parts: str = "all",
    finetune_mode: str = "linear_probe",
    epochs: int = 20,
    *,
    multi_label: bool = True,
    label_fraction: float = 1.0,
    from_scratch: bool = False,
    preset: str = "tiny",
    image_size: int = 256,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    weight_decay: float = 0.05,
    layer_decay: float = 0.75,
    trainable_blocks: int = 2,
    warmup_epochs: int = 2,
    val_interval: int = 5,
    threshold_method: str = "youden",
    max_pos_weight: float = 100.0,
    source_class_names: Sequence[str] | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Fine-tune a :class:`~radlas_monai.networks.classifier.RadLASClassifier` and evaluate it on ``test_items``.

    Args:
        train_items: datalist items (absolute ``image`` paths) with ``findings`` or ``label``.
        val_items: validation items (model selection every ``val_interval`` epochs, and operating points).
        test_items: test items (the reported metrics).
        class_names: the classes.
        encoder_ckpt: the pretrain checkpoint (RadLAS ``model.pt``, or an encoder / ``ViTAutoEnc`` state dict with
            ``pretrained_parts="encoder"``); ignored with ``from_scratch``.
        pretrained_parts: ``"all"`` or ``"encoder"``.
        finetune_mode: ``"linear_probe"``, ``"partial"`` or ``"full"``.
        epochs: training epochs.
        multi_label: sigmoid (True) or softmax (False).
        label_fraction: fraction of the training *patients* kept (1 %, 10 %, 100 %), sampled with ``seed``.
        from_scratch: random backbone on purpose.
        preset: backbone preset of the checkpoint.
        image_size: network input size.
        batch_size: training and evaluation batch size.
        learning_rate: head learning rate (layers below get ``layer_decay`` powers of it in ``full`` mode).
        weight_decay: AdamW weight decay of matrices.
        layer_decay: layer-wise LR decay (``full`` mode only).
        trainable_blocks: encoder blocks trained in ``partial`` mode.
        warmup_epochs: linear warm-up of the cosine schedule.
        val_interval: validate (and keep the best weights) every this many epochs, and after the last.
        threshold_method: ``"youden"`` or ``"f1"``.
        max_pos_weight: clip of the BCE positive weights.
        source_class_names: the datalist's ``class_names`` the items' ``label`` vectors refer to.
        backbone_kwargs: extra :class:`RadLAS` arguments.
        device: defaults to CUDA when available.
        num_workers: data-loading workers.
        seed: seed of the initialisation, shuffling and label sampling.

    Returns:
        The :func:`~radlas_monai.metrics.classification.classification_report` of the best epoch's weights on the
        test items, plus ``best_epoch``, ``best_val_mean_auroc``, ``num_train``, ``epochs``, ``train_seconds``,
        ``finetune_mode``, ``pretrained_parts``, ``label_fraction``.

    Raises:
        ValueError: empty training/validation/test items, bad labels or arguments.
        CheckpointError, StateDictMismatchError: see :class:`RadLASClassifier`.
    """
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.handlers import IgniteMetricHandler, LrScheduleHandler, ValidationHandler
    from monai.optimizers import WarmupCosineSchedule

    from radlas_monai.data.datalist import sample_label_fraction
    from radlas_monai.engines.finetune import ClassifierEvalStep, ClassifierTrainStep, classification_loss
    from radlas_monai.engines.finetune_outputs import predict_probabilities
    from radlas_monai.metrics.classification import MeanROCAUCMetric, classification_report
    from radlas_monai.networks.classifier import RadLASClassifier
    from radlas_monai.networks.lr_decay import layer_decay_param_groups

    if not train_items or not val_items or not test_items:
        raise ValueError(
            f"need training, validation and test items, got {len(train_items)}/{len(val_items)}/{len(test_items)}"
        )
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kept = sample_label_fraction(list(train_items), float(label_fraction), seed=int(seed))
    train = _labelled(kept, class_names, multi_label, source_class_names)
    val = _labelled(val_items, class_names, multi_label, source_class_names)
    test = _labelled(test_items, class_names, multi_label, source_class_names)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        network = RadLASClassifier(
            class_names, preset, image_size, multi_label, encoder_ckpt, from_scratch, finetune_mode,
            pretrained_parts, trainable_blocks, backbone_kwargs=backbone_kwargs,
        ).to(device)  # fmt: skip
    train_loader = _loader(train, image_size, batch_size, True, seed, num_workers)
    val_loader = _loader(val, image_size, batch_size, False, seed, num_workers)
    test_loader = _loader(test, image_size, batch_size, False, seed, num_workers)
    decay = layer_decay if finetune_mode == "full" else 1.0
    groups = layer_decay_param_groups(network, learning_rate, weight_decay=weight_decay, layer_decay=decay)
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay)
    steps = len(train_loader)
    scheduler = WarmupCosineSchedule(
        optimizer, warmup_steps=max(1, warmup_epochs * steps), t_total=max(2, epochs * steps)
    )
    best: dict[str, Any] = {"metric": -float("inf"), "epoch": 0, "state": copy.deepcopy(network.state_dict())}
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=val_loader,
        network=network,
        iteration_update=ClassifierEvalStep(),
        key_val_metric={
            "val_mean_auroc": IgniteMetricHandler(
                MeanROCAUCMetric(), output_transform=lambda o: (o["pred"], o["label"])
            )
        },
        decollate=False,
    )
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=int(epochs),
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=classification_loss(train, class_names, multi_label, max_pos_weight).to(device),
        iteration_update=ClassifierTrainStep(),
        train_handlers=[
            LrScheduleHandler(scheduler, epoch_level=False, print_lr=False),
            ValidationHandler(validator=evaluator, interval=max(1, int(val_interval)), epoch_level=True),
        ],
        decollate=False,
    )

    def keep_best(engine: Any) -> None:
        value = float(evaluator.state.metrics.get("val_mean_auroc", float("nan")))
        if value == value and value > best["metric"]:
            best.update(metric=value, epoch=trainer.state.epoch, state=copy.deepcopy(network.state_dict()))

    from ignite.engine import Events

    evaluator.add_event_handler(Events.COMPLETED, keep_best)
    start = time.perf_counter()
    trainer.run()
    if trainer.state.epoch % max(1, int(val_interval)):
        evaluator.run(trainer.state.epoch)
    seconds = time.perf_counter() - start
    network.load_state_dict(best["state"])
    val_scores, val_labels = predict_probabilities(network, val_loader, device)
    test_scores, test_labels = predict_probabilities(network, test_loader, device)
    report = classification_report(
        val_scores, val_labels, test_scores, test_labels, class_names, multi_label, threshold_method
    )
    report.update(
        best_epoch=int(best["epoch"]),
        best_val_mean_auroc=best["metric"] if best["epoch"] else None,
        num_train=len(train),
        epochs=int(epochs),
        train_seconds=round(seconds, 2),
        finetune_mode=finetune_mode,
        pretrained_parts=None if from_scratch else pretrained_parts,
        label_fraction=float(label_fraction),
    )
    logger.info("%s (%s): test mean AUROC %s", finetune_mode, pretrained_parts, report["mean"]["auroc"])
    return report
