"""Fine-tuning pieces of the ``finetune_classification`` bundle: labelled splits, losses, train / eval / infer steps.

Data: :func:`load_classification_split` reads one split of a datalist, leaves out unreadable files (with the usual
skip report), turns each item's labels into the target of the chosen mode over the configured ``class_names``
(:func:`class_target`) and, for training, keeps a reproducible ``label_fraction`` of the *patients*
(:func:`radlas_monai.data.datalist.sample_label_fraction`).

Loss: :func:`classification_loss` is ``BCEWithLogitsLoss`` with per-class ``pos_weight = negatives / positives``
of the training labels (multi-label) or ``CrossEntropyLoss`` with ``weight_k = N / (K * n_k)`` (multi-class).

Steps (``iteration_update`` of MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``):
:class:`ClassifierTrainStep`, :class:`ClassifierEvalStep`, :class:`ClassifierInferenceStep`. With a frozen encoder
(``linear_probe``) the backbone's outputs do not change during training, so the train and eval steps compute them
once per distinct image and reuse them (:class:`FrozenFeatureCache`); the head is then the only work per epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.utils import CommonKeys

from radlas_monai.data.vocabulary import NO_FINDING, multi_hot
from radlas_monai.engines.inference import _per_item
from radlas_monai.engines.pretrain import _publish, autocast_context
from radlas_monai.networks.classifier import BackboneFeatures, RadLASClassifier

__all__ = [
    "class_target",
    "load_classification_split",
    "positive_weights",
    "class_weights",
    "classification_loss",
    "unwrap_network",
    "FrozenFeatureCache",
    "ClassifierTrainStep",
    "ClassifierEvalStep",
    "ClassifierInferenceStep",
    "one_hot_targets",
]

logger = logging.getLogger(__name__)


def _datalist_class_names(datalist: str | os.PathLike) -> list[str] | None:
    with open(datalist, encoding="utf-8") as handle:
        names = json.load(handle).get("class_names")
    return [str(n) for n in names] if isinstance(names, list) else None


def _multi_hot(item: dict, class_names: Sequence[str], source_names: Sequence[str] | None) -> list[int]:
    label = item.get("label")
    if isinstance(label, (list, tuple)) and source_names is not None and list(source_names) == list(class_names):
        return [int(v) for v in label]
    if isinstance(item.get("findings"), list):
        return multi_hot(item["findings"], list(class_names))
    if isinstance(label, (list, tuple)) and source_names is not None:
        if len(label) != len(source_names):
            raise ValueError(f"item {item.get('patient', '?')}: label has {len(label)} values for {source_names}")
        present = [name for name, value in zip(source_names, label) if value]
        missing = [name for name in class_names if name not in source_names and name != NO_FINDING]
        if missing:
            raise ValueError(f"class_names {missing} are not among the datalist's class_names {list(source_names)}")
        return [int(name in present) for name in class_names]
    raise ValueError(
        f"item {item.get('patient', item.get('image'))!s} has no usable labels: need 'findings', or 'label' with the "
        "datalist's top-level 'class_names'"
    )


def class_target(
    item: dict, class_names: Sequence[str], multi_label: bool = True, source_names: Sequence[str] | None = None
) -> np.ndarray:
    """The training target of one datalist item over ``class_names``.

    Labels come from ``item["label"]`` when the datalist's ``class_names`` (``source_names``) equal
    ``class_names``, else from ``item["findings"]`` (names harmonised with
    :func:`radlas_monai.data.vocabulary.multi_hot`), else from ``item["label"]`` remapped by name.

    Args:
        item: a datalist item.
        class_names: the classifier's classes.
        multi_label: multi-hot target (True) or a class index (False).
        source_names: the datalist's top-level ``class_names``.

    Returns:
        float32 ``(K,)`` multi-hot, or an int64 scalar class index. A multi-class item with no finding maps to
        ``"No Finding"`` when that is one of ``class_names``.

    Raises:
        ValueError: no usable labels; for multi-class, an item with several findings, or none and no
            ``"No Finding"`` class.
    """
    vector = _multi_hot(item, class_names, source_names)
    if multi_label:
        return np.asarray(vector, dtype=np.float32)
    if sum(vector) == 0 and NO_FINDING in class_names:
        vector = [int(name == NO_FINDING) for name in class_names]
    if sum(vector) != 1:
        found = [n for n, v in zip(class_names, vector) if v]
        raise ValueError(
            f"multi-class (softmax) needs exactly one class per image; item {item.get('patient', item.get('image'))!s} "
            f"has {found or 'none'} of {list(class_names)} (use multi_label=True, or add {NO_FINDING!r} to class_names)"
        )
    return np.asarray(int(np.argmax(vector)), dtype=np.int64)


def load_classification_split(
    datalist: str | os.PathLike,
    split: str,
    output_dir: str | os.PathLike,
    class_names: Sequence[str],
    multi_label: bool = True,
    *,
    label_fraction: float = 1.0,
    seed: int = 0,
    strict: bool = False,
    limit: int = 0,
) -> list[dict]:
    """One split of a datalist, screened, with classification targets under ``"label"``.

    Args:
        datalist: the datalist JSON.
        split: ``"training"``, ``"validation"`` or ``"test"``.
        output_dir: where the skip report ``skipped_<split>.json`` goes.
        class_names: the classifier's classes.
        multi_label: see :func:`class_target`.
        label_fraction: keep this fraction of the patients (``(0, 1]``, by ``item["patient"]``, reproducible with
            ``seed``; a smaller fraction is a subset of a larger one).
        seed: seed of the patient sampling.
        strict: fail at the first unreadable file.
        limit: keep the first ``limit`` items (0 = all) before sampling, for smoke runs.

    Returns:
        ``[{"image": path, "label": target, "patient": id}, ...]``.

    Raises:
        ValueError: bad ``label_fraction`` or labels (see :func:`class_target`).
    """
    from radlas_monai.data.datalist import sample_label_fraction
    from radlas_monai.engines.data import load_screened_split

    if not 0.0 < float(label_fraction) <= 1.0:
        raise ValueError(f"label_fraction must be in (0, 1], got {label_fraction}")
    items = load_screened_split(datalist, split, output_dir, keys=("image",), strict=strict, limit=limit)
    source_names = _datalist_class_names(datalist)
    kept = sample_label_fraction(items, float(label_fraction), seed=int(seed)) if label_fraction < 1.0 else items
    result = [
        {
            "image": item["image"],
            "label": class_target(item, class_names, multi_label, source_names),
            "patient": str(item.get("patient", "")),
        }
        for item in kept
    ]
    logger.info(
        "%s: %d images (%d before the %.3g label fraction)%s",
        split,
        len(result),
        len(items),
        label_fraction,
        f", positives per class {_counts(result, class_names, multi_label)}" if result else "",
    )
    return result


def _label_matrix(items: Sequence[dict], num_classes: int, multi_label: bool) -> np.ndarray:
    if not items:
        return np.zeros((0, num_classes), dtype=np.float64)
    labels = np.stack([np.asarray(item["label"]) for item in items])
    if multi_label:
        if labels.ndim != 2 or labels.shape[1] != num_classes:
            raise ValueError(f"expected multi-hot labels of {num_classes} classes, got shape {labels.shape}")
        return labels.astype(np.float64)
    return np.eye(num_classes)[labels.astype(np.int64).reshape(-1)]


def _counts(items: Sequence[dict], class_names: Sequence[str], multi_label: bool) -> dict[str, int]:
    counts = _label_matrix(items, len(class_names), multi_label).sum(0)
    return {name: int(c) for name, c in zip(class_names, counts)}


def positive_weights(items: Sequence[dict], num_classes: int, max_weight: float = 100.0) -> torch.Tensor:
    """BCE ``pos_weight`` per class: ``negatives / positives`` of the training labels, clipped to
    ``[1 / max_weight, max_weight]``; 1 for a class without positives or negatives (logged).

    Args:
        items: training items with multi-hot ``"label"``.
        num_classes: ``K``.
        max_weight: clip value.

    Returns:
        float32 ``(K,)``.
    """
    labels = _label_matrix(items, num_classes, True)
    positives = labels.sum(0)
    negatives = len(labels) - positives
    weights = np.ones(num_classes)
    defined = (positives > 0) & (negatives > 0)
    weights[defined] = np.clip(negatives[defined] / positives[defined], 1.0 / max_weight, max_weight)
    if not defined.all():
        logger.warning("classes %s lack positives or negatives in training: pos_weight 1", np.flatnonzero(~defined))
    return torch.as_tensor(weights, dtype=torch.float32)


def class_weights(items: Sequence[dict], num_classes: int) -> torch.Tensor:
    """Cross-entropy class weights ``N / (K * n_k)`` of the training labels (1 for an absent class).

    Args:
        items: training items with class-index ``"label"``.
        num_classes: ``K``.

    Returns:
        float32 ``(K,)``.
    """
    counts = _label_matrix(items, num_classes, False).sum(0)
    weights = np.ones(num_classes)
    present = counts > 0
    weights[present] = counts.sum() / (num_classes * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


def classification_loss(
    items: Sequence[dict], class_names: Sequence[str], multi_label: bool = True, max_pos_weight: float = 100.0
) -> nn.Module:
    """The imbalance-weighted loss of the training ``items``.

    Returns:
        ``BCEWithLogitsLoss(pos_weight=...)`` (multi-label) or ``CrossEntropyLoss(weight=...)`` (multi-class).
    """
    k = len(class_names)
    if multi_label:
        weights = positive_weights(items, k, max_pos_weight)
        logger.info("BCE pos_weight %s", dict(zip(class_names, np.round(weights.numpy(), 3).tolist())))
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    weights = class_weights(items, k)
    logger.info("cross-entropy class weights %s", dict(zip(class_names, np.round(weights.numpy(), 3).tolist())))
    return nn.CrossEntropyLoss(weight=weights)


def unwrap_network(network: nn.Module) -> nn.Module:
    """The module inside a DataParallel / DDP wrapper (or ``network`` itself)."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    return network.module if isinstance(network, wrappers) else network


def one_hot_targets(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(B, K)`` float targets from multi-hot ``(B, K)`` or class indices ``(B,)``."""
    if label.ndim == 2:
        return label.float()
    return torch.nn.functional.one_hot(label.long().reshape(-1), num_classes).float()


class FrozenFeatureCache:
    """Backbone features of a frozen-encoder classifier, computed once per distinct image.

    Keys are a BLAKE2b digest of each image's pixels, so the cache is correct for any data order and only saves
    work when the same pixels come back (no random augmentation). At most ``max_items`` images are kept (about
    ``N * (D + 1) * 4`` bytes each: 200 kB for the tiny preset at 256 px).

    Args:
        max_items: capacity; further images are computed every time.
    """

    def __init__(self, max_items: int = 4096) -> None:
        self.max_items = int(max_items)
        self._store: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    @staticmethod
    def _key(image: torch.Tensor) -> bytes:
        return hashlib.blake2b(image.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()

    def features(self, network: RadLASClassifier, image: torch.Tensor) -> BackboneFeatures:
        """The backbone features of ``image`` ``(B, 1, H, W)``, from the cache where possible.

        Raises:
            ValueError: the network's encoder trains (its features change every step).
        """
        if network.encoder_trainable:
            raise ValueError("FrozenFeatureCache needs a frozen encoder (finetune_mode='linear_probe')")
        keys = [self._key(image[i]) for i in range(image.shape[0])]
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if missing:
            with torch.no_grad():
                computed = network.forward_backbone(image[missing])
            for j, i in enumerate(missing):
                fresh[i] = (computed.tokens[j].detach(), computed.token_weight[j].detach())
                if len(self._store) < self.max_items:
                    self._store[keys[i]] = fresh[i]
        pairs = [fresh[i] if i in fresh else self._store[key] for i, key in enumerate(keys)]
        return BackboneFeatures(
            tokens=torch.stack([p[0] for p in pairs]), token_weight=torch.stack([p[1] for p in pairs])
        )


def _batch_image(batchdata: dict[str, Any], device: torch.device) -> torch.Tensor:
    image = batchdata[CommonKeys.IMAGE]
    image = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    return image.to(device).float()


def _cached(cache: FrozenFeatureCache | None, network: nn.Module, image: torch.Tensor) -> BackboneFeatures | None:
    core = unwrap_network(network)
    if cache is None or not isinstance(core, RadLASClassifier) or core.encoder_trainable:
        return None
    return cache.features(core, image)


class ClassifierTrainStep:
    """``iteration_update`` of ``SupervisedTrainer``: one fine-tuning step of a :class:`RadLASClassifier`.

    Uses the trainer's ``network``, ``optimizer`` and ``loss_function`` (:func:`classification_loss`).

    Args:
        amp: bf16 autocast.
        grad_clip_norm: clip the gradient norm (0/None: off).
        cache_features: reuse frozen-backbone features (:class:`FrozenFeatureCache`; linear probe only).
        max_cached: cache capacity in images.

    Returns (per call):
        ``{"loss": float, "pred": (B, K) probabilities, "label": (B, K) targets}`` (detached).
    """

    def __init__(
        self, amp: bool = False, grad_clip_norm: float | None = 1.0, cache_features: bool = True, max_cached: int = 4096
    ) -> None:
        self.amp = amp
        self.grad_clip_norm = grad_clip_norm
        self.cache = FrozenFeatureCache(max_cached) if cache_features else None

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        device = torch.device(engine.state.device)
        network, optimizer = engine.network, engine.optimizer
        image = _batch_image(batchdata, device)
        label = torch.as_tensor(batchdata[CommonKeys.LABEL]).to(device)
        network.train()
        features = _cached(self.cache, network, image)
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device, self.amp):
            output = network(image, backbone=features, evidence=False)
        logits = output.logits.float()
        target = label.float() if output.multi_label else label.long().reshape(-1)
        loss = engine.loss_function(logits, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at iteration {engine.state.iteration}")
        loss.backward()
        if self.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(
                [p for p in network.parameters() if p.requires_grad], float(self.grad_clip_norm)
            )
        optimizer.step()
        return _publish(
            engine,
            {
                CommonKeys.LOSS: float(loss.detach()),
                CommonKeys.PRED: output.probabilities().detach(),
                CommonKeys.LABEL: one_hot_targets(label, logits.shape[1]),
            },
        )


class ClassifierEvalStep:
    """``iteration_update`` of ``SupervisedEvaluator``: class probabilities of a labelled batch.

    Args:
        amp: bf16 autocast.
        cache_features: reuse frozen-backbone features across validation runs (linear probe only).
        max_cached: cache capacity in images.

    Returns (per call):
        ``{"pred": (B, K) probabilities, "label": (B, K) one-hot/multi-hot targets, "logits": (B, K)}``.
    """

    def __init__(self, amp: bool = False, cache_features: bool = True, max_cached: int = 4096) -> None:
        self.amp = amp
        self.cache = FrozenFeatureCache(max_cached) if cache_features else None

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        device = torch.device(engine.state.device)
        image = _batch_image(batchdata, device)
        engine.network.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            output = engine.network(image, backbone=_cached(self.cache, engine.network, image), evidence=False)
        logits = output.logits.float()
        result = {CommonKeys.PRED: output.probabilities(), "logits": logits}
        if CommonKeys.LABEL in batchdata:
            result[CommonKeys.LABEL] = one_hot_targets(
                torch.as_tensor(batchdata[CommonKeys.LABEL]).to(device), logits.shape[1]
            )
        return _publish(engine, result)


class ClassifierInferenceStep:
    """``iteration_update`` of the inference ``SupervisedEvaluator``: probabilities and evidence maps per input.

    Args:
        amp: bf16 autocast.

    Returns (per call):
        ``{"image" (B, 1, H, W), "pred" (B, K) probabilities, "evidence_maps" (B, K, H, W),
        "lesion_map" (B, 1, H, W), "meta": [{"image_id", "filename_or_obj"}, ...]}``.
    """

    def __init__(self, amp: bool = False) -> None:
        self.amp = amp

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        device = torch.device(engine.state.device)
        raw = batchdata[CommonKeys.IMAGE]
        meta = dict(getattr(raw, "meta", {}) or {})
        image = _batch_image(batchdata, device)
        engine.network.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            output = engine.network(image)
        size = image.shape[0]
        ids, paths = _per_item(meta.get("image_id"), size), _per_item(meta.get("filename_or_obj"), size)
        return {
            CommonKeys.IMAGE: image,
            CommonKeys.PRED: output.probabilities(),
            "evidence_maps": output.evidence_maps.float(),
            "lesion_map": output.lesion_map.float(),
            "meta": [{"image_id": ids[i], "filename_or_obj": paths[i]} for i in range(size)],
        }
