"""Every compared model trained with one budget: same images, image size, epochs, batch and optimizer.

The comparison experiments (``scripts/compare_localization.py``, ``scripts/compare_classification.py``) train
each method through one function of this module:

==========================  ==================================================================================
``radlas``                  RadLAS Task I + Task II (:class:`~radlas_monai.engines.pretrain.RadLASPretrainStep`,
                            the pretrain bundle's loss and synthesis)
``reconstruction_only``     the same with the lesion-discrimination (Task II) weight set to 0
``vit_autoenc``             MONAI's ViTAutoEnc self-supervised recipe at the same ViT width and depth
                            (:mod:`~radlas_monai.baselines.vit_autoenc`)
``normal_autoencoder``      a convolutional autoencoder trained on the *normal* images only
                            (:mod:`~radlas_monai.baselines.normal_autoencoder`)
``densenet121``             a supervised DenseNet121 (for Grad-CAM, :mod:`~radlas_monai.baselines.gradcam`)
==========================  ==================================================================================

The shared :class:`PretrainBudget` fixes image size, epochs, batch size, AdamW (learning rate, weight decay) and
the warm-up + cosine schedule (MONAI ``WarmupCosineSchedule``) for all of them. Each trained network is cached as
``<work_dir>/<method>/model.pt`` with ``settings.json``; a later call with the same settings hash (method, budget,
method options and a fingerprint of the training images) reuses the file instead of training again.

The data protocol is fixed here too, so both comparison scripts train on the same images:
:func:`prepare_experiment_data` (``"synthetic"``: the embedded dataset's splits; ``"jsrt"``: :func:`jsrt_split`, a
50 % / 50 % patient-level split stratified by nodule / normal, seed 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from radlas_monai.baselines.experiment_data import (
    JSRT_ROOT,
    ExperimentData,
    images_fingerprint,
    jsrt_split,
    load_radiographs,
    prepare_experiment_data,
)

__all__ = [
    "METHODS",
    "PretrainBudget",
    "TrainedModel",
    "default_work_dir",
    "fit_minibatches",
    "seeded_build",
    "ExperimentData",
    "JSRT_ROOT",
    "jsrt_split",
    "prepare_experiment_data",
    "load_radiographs",
    "images_fingerprint",
    "settings_hash",
    "cached_training",
    "pretrain_radlas",
    "pretrain_reconstruction_only",
    "pretrain_vit_autoenc",
    "train_normal_autoencoder_variant",
    "train_densenet121_variant",
    "vit_autoenc_to_encoder_state",
    "load_radlas",
    "load_vit_autoenc",
]

logger = logging.getLogger(__name__)


METHODS: tuple[str, ...] = ("radlas", "reconstruction_only", "vit_autoenc", "normal_autoencoder", "densenet121")
#: in every RadLAS settings hash: bump when the synthesizer or the network's defaults change, so cached runs retrain
RECIPE_VERSION = "task1-v2: conv restorer + U-Net grounding, pixel-share family mix, Poisson foreign patches"
"""Names of the compared trainings (also their cache folder names)."""


@dataclasses.dataclass(frozen=True)
class PretrainBudget:
    """The training budget every compared method gets.

    Attributes:
        image_size: square input size in pixels.
        preset: RadLAS encoder preset; the ViTAutoEnc recipe uses the same width and depth.
        epochs: passes over the training images.
        batch_size: images per optimizer step (the last incomplete batch is dropped when there is more than one).
        learning_rate: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_epochs: linear warm-up length before the cosine decay.
        seed: seed of the network initialisation, the batch order and the method's own random draws.
        field_of_view_mm: field of view assumed for the RadLAS lesion synthesis sizes (the pretrain bundle's).
    """

    image_size: int = 256
    preset: str = "tiny"
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 3e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    seed: int = 0
    field_of_view_mm: float = 350.0

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {self.image_size}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.warmup_epochs < 0:
            raise ValueError(
                f"need epochs >= 1, batch_size >= 1, learning_rate > 0, warmup_epochs >= 0; got {self.to_dict()}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dictionary of the budget."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainedModel:
    """A trained (or reused) network of one compared method.

    Attributes:
        method: one of :data:`METHODS`.
        checkpoint: path of ``model.pt`` (the network's state dict).
        settings: what it was trained with (budget, options, data fingerprint, settings hash).
        reused: True when an existing checkpoint with the same settings hash was reused.
        seconds: training wall time (of the original training when reused).
        history: mean training loss per epoch.
    """

    method: str
    checkpoint: Path
    settings: dict[str, Any]
    reused: bool
    seconds: float
    history: list[float]


def default_work_dir(dataset: str) -> Path:
    """``$RADLAS_EXPERIMENTS_DIR/<dataset>`` or ``~/.cache/radlas_monai/experiments/<dataset>`` (outside git)."""
    root = os.environ.get("RADLAS_EXPERIMENTS_DIR") or Path.home() / ".cache" / "radlas_monai" / "experiments"
    return Path(root).expanduser() / str(dataset)


def settings_hash(settings: Mapping[str, Any]) -> str:
    """12-hex-digit hash of a JSON-serialisable settings dictionary (key order does not matter)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fit_minibatches(
    step: Callable[[torch.Tensor], float],
    num_items: int,
    optimizer: torch.optim.Optimizer,
    budget: PretrainBudget,
    name: str = "training",
) -> list[float]:
    """Run ``budget.epochs`` epochs of shuffled minibatches with warm-up + cosine learning rates.

    Args:
        step: does one optimizer step on the items at the given indices ``(b,)`` and returns its loss.
        num_items: number of training items.
        optimizer: the optimizer ``step`` uses (its learning rate is scheduled here).
        budget: epochs, batch size, warm-up and seed (of the batch order, a private ``torch.Generator``).
        name: label of the progress log lines.

    Returns:
        The mean loss of each epoch.

    Raises:
        ValueError: when ``num_items < 1``.
    """
    from monai.optimizers import WarmupCosineSchedule

    if num_items < 1:
        raise ValueError(f"{name}: no training items")
    batch = min(budget.batch_size, num_items)
    per_epoch = num_items // batch  # drops the last incomplete batch (the bundle's drop_last)
    scheduler = WarmupCosineSchedule(
        optimizer, warmup_steps=max(1, budget.warmup_epochs * per_epoch), t_total=max(2, budget.epochs * per_epoch)
    )
    generator = torch.Generator().manual_seed(budget.seed)
    history = []
    for epoch in range(budget.epochs):
        order = torch.randperm(num_items, generator=generator)
        start, losses = time.perf_counter(), []
        for k in range(per_epoch):
            losses.append(float(step(order[k * batch : (k + 1) * batch])))
            scheduler.step()
        history.append(sum(losses) / len(losses))
        logger.info(
            "%s epoch %d/%d: loss %.4f (%.1f s)",
            name,
            epoch + 1,
            budget.epochs,
            history[-1],
            time.perf_counter() - start,
        )
    return history


def cached_training(
    method: str,
    work_dir: str | os.PathLike,
    settings: dict[str, Any],
    train: Callable[[], tuple[nn.Module, list[float]]],
    force: bool = False,
) -> TrainedModel:
    """Reuse ``<work_dir>/<method>/model.pt`` when its ``settings.json`` has the same hash, else train and save.

    Args:
        method: the method name (cache sub-folder).
        work_dir: the experiment's work folder.
        settings: everything that defines the training (JSON-serialisable).
        train: trains and returns ``(network, per-epoch losses)``.
        force: train again even when a matching checkpoint exists.

    Returns:
        :class:`TrainedModel`.
    """
    from radlas_monai.handlers.checkpoint_io import atomic_torch_save

    folder = Path(work_dir) / method
    settings = {**settings, "method": method}
    digest = settings_hash(settings)
    checkpoint, record_path = folder / "model.pt", folder / "settings.json"
    if not force and checkpoint.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("settings_hash") == digest:
            logger.info("%s: reusing %s (settings hash %s)", method, checkpoint, digest)
            return TrainedModel(method, checkpoint, record["settings"], True, record["seconds"], record["history"])
        logger.info("%s: settings changed (hash %s -> %s), training again", method, record.get("settings_hash"), digest)
    logger.info("%s: training, settings hash %s -> %s", method, digest, checkpoint)
    start = time.perf_counter()
    network, history = train()
    seconds = round(time.perf_counter() - start, 1)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({k: v.detach().cpu() for k, v in network.state_dict().items()}, checkpoint)
    record = {"settings_hash": digest, "settings": settings, "seconds": seconds, "history": history}
    record_path.write_text(json.dumps(record, indent=2, default=str))
    logger.info("%s: trained in %.1f s", method, seconds)
    return TrainedModel(method, checkpoint, settings, False, seconds, history)


def seeded_build(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a network with its initialisation drawn from ``seed`` without disturbing the global RNG state.

    ``torch.random.fork_rng`` saves the global CPU generator, seeds it for ``build`` and restores it afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def _adamw(network: nn.Module, budget: PretrainBudget) -> torch.optim.AdamW:
    return torch.optim.AdamW(network.parameters(), lr=budget.learning_rate, weight_decay=budget.weight_decay)


def _base_settings(budget: PretrainBudget, images: torch.Tensor, **options: Any) -> dict[str, Any]:
    return {
        "budget": budget.to_dict(),
        "num_images": int(images.shape[0]),
        "data": images_fingerprint(images),
        **options,
    }


def _check_images(images: torch.Tensor, budget: PretrainBudget) -> None:
    expected = (1, budget.image_size, budget.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"expected training images (N, {', '.join(map(str, expected))}), got {tuple(images.shape)}")


#: the first RadLAS recipe (UNETR-style restorer on ViT tokens, small half-resolution grounding head): a baseline
PREVIOUS_RECIPE: dict[str, Any] = {"restorer": "vit", "grounding": "light"}
#: the grounding loss of the current recipe (the pretrain bundle's ``loss``): pixel-balanced focal BCE + Dice
RECIPE_LOSS: dict[str, Any] = {"bce_weight": 10.0, "focal_gamma": 2.0}


def load_radlas(
    path: str | os.PathLike,
    budget: PretrainBudget,
    device: str | torch.device = "cpu",
    network_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Rebuild a RadLAS network of ``budget``'s preset and size (and ``network_kwargs``) and load ``path`` (eval)."""
    from radlas_monai.handlers.checkpoint_io import load_network_weights
    from radlas_monai.networks import RadLAS

    network = RadLAS(preset=budget.preset, img_size=budget.image_size, **dict(network_kwargs or {}))
    return load_network_weights(network, path).to(device).eval()


def pretrain_radlas(
    images: torch.Tensor,
    budget: PretrainBudget,
    work_dir: str | os.PathLike,
    *,
    lung_masks: torch.Tensor | None = None,
    contrastive_weight: float = 0.1,
    method: str = "radlas",
    device: str | torch.device = "cpu",
    force: bool = False,
    crop_size: int | None = None,
    network_kwargs: Mapping[str, Any] | None = None,
    loss_kwargs: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """RadLAS pretraining (Task I + Task II) with the pretrain bundle's network, loss and lesion synthesis.

    Each step is :class:`~radlas_monai.engines.pretrain.RadLASPretrainStep` (synthesis on the device, teacher-forced
    pooling, gradient clipping at norm 1, the conv path on ``crop_size`` crops) with
    ``RadLASLoss(contrastive_weight=..., **loss_kwargs)`` and ``RandLesionSynthesis(prob=0.8, num_lesions=(1, 3))``
    at ``field_of_view_mm / image_size`` mm per pixel.

    Args:
        images: ``(N, 1, S, S)`` training radiographs in ``[0, 1]`` (``S = budget.image_size``).
        budget: the shared budget.
        work_dir: cache folder of the experiment.
        lung_masks: optional ``(N, 1, S, S)`` lung masks confining the synthetic lesions.
        contrastive_weight: weight of Task II (0 = reconstruction only).
        method: cache name.
        device: training device.
        force: retrain even when cached.
        crop_size: train the convolutional path on crops of this side (None: whole images).
        network_kwargs: further :class:`~radlas_monai.networks.RadLAS` arguments (e.g. :data:`PREVIOUS_RECIPE`).
        loss_kwargs: further :class:`~radlas_monai.losses.RadLASLoss` arguments.

    Returns:
        :class:`TrainedModel` whose checkpoint is a full :class:`~radlas_monai.networks.RadLAS` state dict.

    Raises:
        ValueError: on ill-shaped images or masks.
    """
    _check_images(images, budget)
    if lung_masks is not None and lung_masks.shape != images.shape:
        raise ValueError(f"lung_masks {tuple(lung_masks.shape)} must match images {tuple(images.shape)}")
    from radlas_monai.losses import RadLASLoss

    recon_beta = RadLASLoss().reconstruction.beta  # in the settings hash: a loss change invalidates cached runs
    settings = _base_settings(
        budget,
        images,
        contrastive_weight=float(contrastive_weight),
        lung_masks=lung_masks is not None,
        recon_beta=recon_beta,
        crop_size=crop_size,
        network=dict(network_kwargs or {}),
        loss=dict(loss_kwargs or {}),
        synthesis=RECIPE_VERSION,
    )

    def train() -> tuple[nn.Module, list[float]]:
        from radlas_monai.engines.pretrain import RadLASPretrainStep
        from radlas_monai.losses import RadLASLoss
        from radlas_monai.networks import RadLAS
        from radlas_monai.transforms.lesion_synthesis import RandLesionSynthesis

        network = seeded_build(
            budget.seed,
            lambda: RadLAS(preset=budget.preset, img_size=budget.image_size, **dict(network_kwargs or {})),
        )
        network = network.to(device)
        synthesis = RandLesionSynthesis(
            prob=0.8, num_lesions=(1, 3), default_spacing=budget.field_of_view_mm / budget.image_size
        )
        synthesis.set_random_state(seed=budget.seed)
        engine = SimpleNamespace(
            state=SimpleNamespace(device=torch.device(device), iteration=0),
            network=network,
            optimizer=_adamw(network, budget),
            loss_function=RadLASLoss(contrastive_weight=contrastive_weight, **dict(loss_kwargs or {})),
            non_blocking=False,
        )
        iteration = RadLASPretrainStep(synthesis, grad_clip_norm=1.0, crop_size=crop_size, seed=budget.seed)

        def step(index: torch.Tensor) -> float:
            engine.state.iteration += 1
            batch = {"image": images[index]}
            if lung_masks is not None:
                batch["lung_mask"] = lung_masks[index]
            return iteration(engine, batch)["loss"]

        history = fit_minibatches(step, images.shape[0], engine.optimizer, budget, name=method)
        return network.cpu(), history

    return cached_training(method, work_dir, settings, train, force=force)


def pretrain_reconstruction_only(
    images: torch.Tensor,
    budget: PretrainBudget,
    work_dir: str | os.PathLike,
    *,
    lung_masks: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    force: bool = False,
    **options: Any,
) -> TrainedModel:
    """RadLAS Task I alone: :func:`pretrain_radlas` with the lesion-discrimination weight 0 (same everything else;
    ``options``: ``crop_size``, ``network_kwargs``, ``loss_kwargs``)."""
    return pretrain_radlas(
        images,
        budget,
        work_dir,
        lung_masks=lung_masks,
        contrastive_weight=0.0,
        method="reconstruction_only",
        device=device,
        force=force,
        **options,
    )


def load_vit_autoenc(path: str | os.PathLike, budget: PretrainBudget, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the recipe's ``ViTAutoEnc`` for ``budget`` and load ``path`` into it (eval mode)."""
    from radlas_monai.baselines.vit_autoenc import build_vit_autoenc
    from radlas_monai.handlers.checkpoint_io import load_network_weights

    network = build_vit_autoenc(preset=budget.preset, img_size=budget.image_size)
    return load_network_weights(network, path).to(device).eval()


def vit_autoenc_to_encoder_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a recipe ``ViTAutoEnc`` state dict onto :class:`~radlas_monai.networks.RadLASEncoder` keys.

    ``patch_embedding.*`` becomes ``patch_embed.*``, ``blocks.*`` and ``norm.*`` keep their names, the
    deconvolution decoder is dropped, and the recipe's missing ``qkv`` biases (``qkv_bias=False``) are added as
    zeros, so the encoder computes exactly the recipe's tokens and loads with ``strict=True``.

    Args:
        state: the ``ViTAutoEnc`` state dict.

    Returns:
        An encoder-only state dict.

    Raises:
        KeyError: when ``state`` has no ``patch_embedding.*`` keys (not a ViTAutoEnc state dict).
    """
    if not any(k.startswith("patch_embedding.") for k in state):
        raise KeyError(f"not a ViTAutoEnc state dict: no patch_embedding.* keys among {sorted(state)[:5]}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("patch_embedding."):
            out["patch_embed." + key[len("patch_embedding.") :]] = value
        elif key.startswith(("blocks.", "norm.")):
            out[key] = value
    for key in [k for k in out if k.endswith("attn.qkv.weight")]:
        bias_key = key[: -len("weight")] + "bias"
        out.setdefault(bias_key, torch.zeros(out[key].shape[0], dtype=out[key].dtype))
    return out


def pretrain_vit_autoenc(
    images: torch.Tensor,
    budget: PretrainBudget,
    work_dir: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    force: bool = False,
) -> TrainedModel:
    """MONAI's ViTAutoEnc recipe (two coarse dropout + shuffle views, ``L1 + NT-Xent * L1``) at the budget.

    The network is :func:`~radlas_monai.baselines.vit_autoenc.build_vit_autoenc` at the budget's preset; the
    views are :class:`~radlas_monai.baselines.views.RecipeViews` seeded with the budget's seed. The optimizer is the
    shared AdamW at the budget's learning rate (not the tutorial's 1e-4), so every method gets the same optimizer.
    Besides ``model.pt`` (the ViTAutoEnc state dict), ``encoder.pt`` holds the encoder in RadLASEncoder keys
    (:func:`vit_autoenc_to_encoder_state`).

    Returns:
        :class:`TrainedModel`.
    """
    _check_images(images, budget)
    settings = _base_settings(budget, images)

    def train() -> tuple[nn.Module, list[float]]:
        from monai.losses import ContrastiveLoss

        from radlas_monai.baselines.views import RecipeViews, make_views_batch
        from radlas_monai.baselines.vit_autoenc import RECIPE_TEMPERATURE, build_vit_autoenc, recipe_train_step

        network = seeded_build(budget.seed, lambda: build_vit_autoenc(preset=budget.preset, img_size=budget.image_size))
        network = network.to(device)
        optimizer = _adamw(network, budget)
        views = RecipeViews(keys="image")
        views.set_random_state(seed=budget.seed)
        contrastive, l1 = ContrastiveLoss(temperature=RECIPE_TEMPERATURE), nn.L1Loss()

        def step(index: torch.Tensor) -> float:
            batch = images[index].to(device)
            return recipe_train_step(network, optimizer, make_views_batch(batch, views), batch, contrastive, l1)["loss"]

        history = fit_minibatches(step, images.shape[0], optimizer, budget, name="vit_autoenc")
        return network.cpu(), history

    trained = cached_training("vit_autoenc", work_dir, settings, train, force=force)
    encoder_path = trained.checkpoint.parent / "encoder.pt"
    if not trained.reused or not encoder_path.is_file():
        from radlas_monai.handlers.checkpoint_io import atomic_torch_save, load_checkpoint

        atomic_torch_save(vit_autoenc_to_encoder_state(load_checkpoint(trained.checkpoint)), encoder_path)
    return trained


def train_normal_autoencoder_variant(
    images: torch.Tensor,
    labels: torch.Tensor,
    budget: PretrainBudget,
    work_dir: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    force: bool = False,
) -> TrainedModel:
    """The normal-only autoencoder: trained on the images whose multi-hot ``labels`` row is all zero.

    It takes the same epochs over its (smaller) normal set, batch size and optimizer as the other methods.

    Args:
        images: ``(N, 1, S, S)`` training radiographs.
        labels: ``(N, K)`` multi-hot labels; rows of zeros are the normal images.

    Raises:
        ValueError: when no training image is normal.
    """
    from radlas_monai.baselines.normal_autoencoder import build_normal_autoencoder, train_normal_autoencoder

    _check_images(images, budget)
    normal = images[labels.reshape(labels.shape[0], -1).sum(dim=1) == 0]
    if normal.shape[0] == 0:
        raise ValueError(f"no normal image among the {images.shape[0]} training images: cannot train the normal AE")
    settings = _base_settings(budget, normal, normal_only=True)

    def train() -> tuple[nn.Module, list[float]]:
        network = seeded_build(budget.seed, build_normal_autoencoder).to(device)
        history = train_normal_autoencoder(network, normal, budget, device=device)
        return network.cpu(), history

    return cached_training("normal_autoencoder", work_dir, settings, train, force=force)


def train_densenet121_variant(
    images: torch.Tensor,
    labels: torch.Tensor,
    budget: PretrainBudget,
    work_dir: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    force: bool = False,
) -> TrainedModel:
    """The supervised DenseNet121 (multi-label BCE on ``labels (N, K)``) at the shared budget, for Grad-CAM."""
    from radlas_monai.baselines.gradcam import build_densenet121, train_densenet121

    _check_images(images, budget)
    labels = labels.reshape(labels.shape[0], -1).float()
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels.shape[0]} label rows for {images.shape[0]} images")
    label_digest = hashlib.sha256(labels.numpy().tobytes()).hexdigest()[:12]
    settings = _base_settings(budget, images, num_classes=int(labels.shape[1]), labels=label_digest)

    def train() -> tuple[nn.Module, list[float]]:
        network = seeded_build(budget.seed, lambda: build_densenet121(int(labels.shape[1]))).to(device)
        history = train_densenet121(network, images, labels, budget, device=device)
        return network.cpu(), history

    return cached_training("densenet121", work_dir, settings, train, force=force)
