"""The data protocol of the comparison experiments: which images every compared model trains and is evaluated on.

:func:`prepare_experiment_data` (``"synthetic"``: the embedded dataset's splits; ``"jsrt"``: :func:`jsrt_split`, a
50 % / 50 % patient-level split stratified by nodule / normal, seed 0), used by both comparison scripts through
:mod:`radlas_monai.baselines.pretrain_variants`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "JSRT_ROOT",
    "ExperimentData",
    "jsrt_split",
    "prepare_experiment_data",
    "load_radiographs",
    "images_fingerprint",
]

logger = logging.getLogger(__name__)

JSRT_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jsrt_nodule"
"""Default location of the JSRT nodule folder (``../shared/data/jsrt_nodule`` next to the repository)."""


def load_radiographs(
    items: Sequence[Mapping[str, Any]], image_size: int, lung_mask_key: str | None = "lung_mask"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Load datalist items into memory as the pretrain bundle preprocesses them (load, area-resize).

    Args:
        items: datalist items with absolute ``"image"`` paths (and optionally lung masks).
        image_size: output side in pixels.
        lung_mask_key: item key of lung masks; masks are returned only when every item has one.

    Returns:
        ``(images (N, 1, S, S) float32 in [0, 1], lung_masks (N, 1, S, S) in {0, 1} or None)``.

    Raises:
        ValueError: when ``items`` is empty.
        RadiographReadError: for a file that cannot be read.
    """
    from radlas_monai.data.loader import LoadRadiograph

    if not items:
        raise ValueError("load_radiographs got no items")
    read_image, read_mask = LoadRadiograph(), LoadRadiograph(mask=True)
    size = (int(image_size), int(image_size))
    with_masks = bool(lung_mask_key) and all(item.get(lung_mask_key) for item in items)
    images, masks = [], []
    for item in items:
        image = torch.as_tensor(read_image(item["image"])).float()[None]
        images.append(F.interpolate(image, size=size, mode="area")[0] if image.shape[-2:] != size else image[0])
        if with_masks:
            mask = torch.as_tensor(read_mask(item[lung_mask_key])).float()[None]
            masks.append((F.interpolate(mask, size=size, mode="nearest")[0] > 0.5).float())
    stacked = torch.stack(images).clamp(0.0, 1.0).contiguous()
    return stacked, (torch.stack(masks) if with_masks else None)


def _absolute(item: Mapping[str, Any], root: Path) -> dict[str, Any]:
    out = dict(item)
    for key in ("image", "lung_mask", "mask"):
        if out.get(key):
            out[key] = str((root / out[key]).resolve())
    return out


def jsrt_split(
    root: str | os.PathLike = JSRT_ROOT, seed: int = 0, validation_fraction: float = 0.25
) -> dict[str, list[dict]]:
    """The comparison's fixed JSRT split: 50 % training / 50 % test by patient, stratified nodule / normal.

    Nodule and normal images are each split in half with
    :func:`~radlas_monai.data.datalist.split_by_patient` (``fractions=(0.5, 0, 0.5)``, ``seed``); every JSRT image
    is its own patient. Items carry absolute paths, ``label``, ``centers``/``radii`` (nodules) and ``lung_mask``.
    For choosing settings, the training half is split once more the same way (stratified, by patient): ``fit``
    (``1 - validation_fraction`` of it) and ``validation``; the test half is never part of that choice.

    Args:
        root: the JSRT nodule folder (``labels.csv``, ``images/``, ``lung_masks/``).
        seed: seed of the split.
        validation_fraction: share of the training half held out as ``validation``.

    Returns:
        ``{"training": [...], "test": [...], "fit": [...], "validation": [...]}`` (``fit + validation`` is
        ``training``).

    Raises:
        FileNotFoundError: when ``root`` has no ``labels.csv``.
    """
    from radlas_monai.data.adapters.jsrt_nodule import build_datalist
    from radlas_monai.data.datalist import split_by_patient

    root = Path(root).expanduser().resolve()
    items = [_absolute(item, root) for item in build_datalist(root, split=(1.0, 0.0, 0.0), seed=seed)["training"]]
    out: dict[str, list[dict]] = {"training": [], "test": [], "fit": [], "validation": []}
    for positive in (True, False):
        group = [item for item in items if bool(sum(item.get("label", [0]))) == positive]
        halves = split_by_patient(group, fractions=(0.5, 0.0, 0.5), seed=seed)
        out["training"] += halves["training"]
        out["test"] += halves["test"]
        parts = split_by_patient(
            halves["training"], fractions=(1.0 - validation_fraction, validation_fraction, 0.0), seed=seed
        )
        out["fit"] += parts["training"]
        out["validation"] += parts["validation"]
    return out


@dataclasses.dataclass
class ExperimentData:
    """The images and labels one comparison run trains and evaluates on.

    Attributes:
        dataset: ``"synthetic"`` or ``"jsrt"``.
        description: how the split was made (goes into the report).
        class_names: label names (columns of the labels).
        train_items, test_items: datalist items with absolute paths.
        train_images, test_images: ``(N, 1, S, S)`` float32 in ``[0, 1]``.
        train_lung_masks: ``(N, 1, S, S)`` or None.
        train_labels, test_labels: ``(N, K)`` float32 multi-hot.
    """

    dataset: str
    description: str
    class_names: list[str]
    train_items: list[dict]
    test_items: list[dict]
    train_images: torch.Tensor
    test_images: torch.Tensor
    train_lung_masks: torch.Tensor | None
    train_labels: torch.Tensor
    test_labels: torch.Tensor


def _labels(items: Sequence[Mapping[str, Any]], num_classes: int) -> torch.Tensor:
    return torch.tensor([list(item.get("label") or [0] * num_classes) for item in items], dtype=torch.float32)


def prepare_experiment_data(
    dataset: str,
    image_size: int,
    *,
    quick: bool = False,
    jsrt_root: str | os.PathLike = JSRT_ROOT,
    seed: int = 0,
    synthetic_images: int = 200,
    validation: bool = False,
) -> ExperimentData:
    """Load the training and evaluation images of a comparison run into memory.

    ``"jsrt"``: :func:`jsrt_split` (training half / test half). ``"synthetic"``: the embedded synthetic dataset
    (:func:`~radlas_monai.data.synthetic.ensure_synthetic_dataset`), trained on its ``training`` split and
    evaluated on ``validation`` + ``test`` (neither is used for model selection here). ``quick`` keeps a few
    images of each (CI smoke runs).

    Args:
        dataset: ``"synthetic"`` or ``"jsrt"``.
        image_size: side the images are resized to.
        quick: keep at most 12 training and 8 evaluation images.
        jsrt_root: the JSRT nodule folder.
        seed: seed of the split and of the synthetic dataset.
        synthetic_images: size of the synthetic dataset.
        validation: JSRT only: train on the ``fit`` part of the training half and evaluate on its ``validation``
            part (:func:`jsrt_split`), to choose settings without looking at the test half.

    Returns:
        :class:`ExperimentData`.

    Raises:
        ValueError: for an unknown dataset, or ``validation`` with the synthetic dataset.
    """
    if validation and dataset != "jsrt":
        raise ValueError(f"validation=True splits the JSRT training half; got dataset {dataset!r}")
    if dataset == "jsrt":
        from radlas_monai.data.adapters.jsrt_nodule import CLASS_NAMES

        splits = jsrt_split(jsrt_root, seed=seed)
        train, test, class_names = splits["training"], splits["test"], list(CLASS_NAMES)
        description = (
            f"JSRT nodule subset ({jsrt_root}): fixed split by patient, 50 % training / 50 % test, stratified "
            f"nodule/normal, seed {seed}"
        )
        if validation:
            train, test = splits["fit"], splits["validation"]
            description += "; validation run: fit part of the training half -> its validation part (no test images)"
    elif dataset == "synthetic":
        from radlas_monai.data.datalist import load_datalist
        from radlas_monai.data.synthetic import ensure_synthetic_dataset

        # the generator draws at least 64 px; smaller runs resize on load (annotations are rescaled by the harness)
        path = ensure_synthetic_dataset(num_images=synthetic_images, image_size=max(64, image_size), seed=seed)
        class_names = list(json.loads(Path(path).read_text())["class_names"])
        train = load_datalist(path, "training")
        test = load_datalist(path, "validation") + load_datalist(path, "test")
        description = (
            f"embedded synthetic radiographs ({synthetic_images} images, seed {seed}): training split for training, "
            "validation + test splits for evaluation"
        )
    else:
        raise ValueError(f"dataset must be 'synthetic' or 'jsrt', got {dataset!r}")
    if quick:
        train, test = _quick_subset(train, 12), _quick_subset(test, 8)
        description += f"; quick run: {len(train)} training / {len(test)} evaluation images"
    train_images, lung_masks = load_radiographs(train, image_size)
    test_images, _ = load_radiographs(test, image_size, lung_mask_key=None)
    k = len(class_names)
    return ExperimentData(
        dataset,
        description,
        class_names,
        train,
        test,
        train_images,
        test_images,
        lung_masks,
        _labels(train, k),
        _labels(test, k),
    )


def _quick_subset(items: list[dict], count: int) -> list[dict]:
    """Up to ``count`` items, half normal and half abnormal where possible (both classes present)."""
    normal = [item for item in items if not sum(item.get("label") or [])]
    abnormal = [item for item in items if sum(item.get("label") or [])]
    half = count // 2
    picked = abnormal[: max(half, count - len(normal))] + normal[: max(half, count - len(abnormal))]
    return picked[:count]


def images_fingerprint(images: torch.Tensor) -> str:
    """A short SHA-256 of the training tensor (shape and bytes): changes whenever the training images do."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
