"""Build the served networks from local bundle folders, without evaluating any bundle config.

A bundle's ``configs/*.json`` hold ``$`` expressions that a ``ConfigParser`` would run. The MONAI Label app
never parses them: :func:`read_plain_values` reads only plain JSON literals (numbers, strings that are not
``$``/``@``/``%`` expressions, lists of those) with :func:`json.load`, the networks are constructed by fixed
Python code from those values, and weights are loaded with ``torch.load(weights_only=True)`` through
:mod:`radlas_monai.handlers.checkpoint_io`. Nothing is fetched from the network.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from radlas_monai.label.params import find_unsafe

__all__ = [
    "BundleSpec",
    "read_plain_values",
    "lesion_bundle_spec",
    "classification_bundle_spec",
    "build_lesion_network",
    "build_classifier",
]

logger = logging.getLogger(__name__)

DEFAULT_CLASS_NAMES = ("Nodule", "Mass", "Consolidation", "Effusion", "Pneumothorax", "Cardiomegaly")
LOCALIZE_DEFAULTS = {"threshold_method": "otsu", "threshold_value": None, "min_area": 16, "max_boxes": 10}


@dataclass(frozen=True)
class BundleSpec:
    """What a served bundle contributes: its checkpoint and the plain values the network needs.

    Attributes:
        name: bundle folder name.
        checkpoint: the weights file (``models/model.pt``).
        preset: encoder preset.
        image_size: square network input size.
        values: the other plain config values read (class names, localization defaults, ...).
        searched: the weights files looked for, in order (``checkpoint`` is the first that exists, else the last).
    """

    name: str
    checkpoint: Path
    preset: str
    image_size: int
    values: dict[str, Any]
    searched: tuple[Path, ...] = ()


def read_plain_values(config_file: str | os.PathLike, keys: Sequence[str]) -> dict[str, Any]:
    """Plain JSON literals of ``keys`` in a bundle config (expressions and references are skipped).

    Args:
        config_file: a bundle ``configs/*.json``; a missing file gives ``{}``.
        keys: top-level ids to read.

    Returns:
        ``{key: value}`` for each key present with a plain value.

    Raises:
        ValueError: the file is not a JSON object.
    """
    path = Path(config_file)
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as handle:
        config = json.load(handle)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a bundle config must be a JSON object, got {type(config).__name__}")
    out = {}
    for key in keys:
        if key in config and find_unsafe(config[key]) is None and not isinstance(config[key], dict):
            out[key] = config[key]
        elif key in config:
            logger.info("%s: %r is not a plain value; the default is used", path.name, key)
    return out


def _checked_size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: image_size must be a positive int, got {value!r}")
    return value


def lesion_bundle_spec(bundle_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> BundleSpec:
    """The lesion_localization bundle: config values and its checkpoint.

    The weights are the bundle's ``models/model.pt`` when present, else the pretrain bundle's
    (``../pretrain/models/model.pt``: the localization bundle runs the pretrain network's lesion map).

    Args:
        bundle_dir: ``bundles/lesion_localization`` (or any folder with ``configs/inference.json``).
        checkpoint: explicit weights file (overrides the search).

    Returns:
        The :class:`BundleSpec`; ``values`` holds the localization defaults.
    """
    root = Path(bundle_dir)
    keys = ("preset", "image_size", *LOCALIZE_DEFAULTS)
    values = {**LOCALIZE_DEFAULTS, **read_plain_values(root / "configs" / "inference.json", keys)}
    if checkpoint is None:
        searched = (root / "models" / "model.pt", root.parent / "pretrain" / "models" / "model.pt")
        checkpoint = searched[0] if searched[0].is_file() else searched[1]
    else:
        searched = (Path(checkpoint),)
    preset = str(values.pop("preset", "tiny"))
    size = _checked_size(values.pop("image_size", 256), str(root))
    return BundleSpec(root.name, Path(checkpoint), preset, size, values, searched)


def classification_bundle_spec(
    bundle_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> BundleSpec:
    """The finetune_classification bundle: class names, label mode, preset, size and ``models/model.pt``.

    Values are read from ``configs/inference.json`` then ``configs/train.json`` (first plain value wins).
    """
    root = Path(bundle_dir)
    keys = ("class_names", "multi_label", "preset", "image_size")
    values: dict[str, Any] = {}
    for name in ("train.json", "inference.json"):
        values.update(read_plain_values(root / "configs" / name, keys))
    names = values.get("class_names", list(DEFAULT_CLASS_NAMES))
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{root}: class_names must be a non-empty list of names, got {names!r}")
    preset = str(values.get("preset", "tiny"))
    size = _checked_size(values.get("image_size", 256), str(root))
    extra = {"class_names": names, "multi_label": bool(values.get("multi_label", True))}
    path = Path(checkpoint) if checkpoint is not None else root / "models" / "model.pt"
    return BundleSpec(root.name, path, preset, size, extra, (path,))


def build_lesion_network(spec: BundleSpec, device: str | torch.device = "cpu") -> torch.nn.Module:
    """``RadLASLesionMap(RadLAS(preset, image_size))`` with the bundle's weights, in eval mode.

    Raises:
        FileNotFoundError: the checkpoint is missing (names the training command).
        CheckpointError: unreadable or mismatched weights.
    """
    from radlas_monai.engines.localization import load_lesion_map_network
    from radlas_monai.networks import RadLAS, RadLASLesionMap

    network = RadLASLesionMap(RadLAS(preset=spec.preset, img_size=spec.image_size)).to(device)
    return load_lesion_map_network(network, spec.checkpoint, map_location=device).eval()


def build_classifier(spec: BundleSpec, device: str | torch.device = "cpu") -> torch.nn.Module:
    """``RadLASClassifier`` with the fine-tuned ``models/model.pt``, in eval mode.

    Raises:
        FileNotFoundError: the checkpoint is missing (names the training command).
        CheckpointError: unreadable or mismatched weights.
    """
    from radlas_monai.engines.localization import load_classifier

    return load_classifier(
        spec.checkpoint,
        spec.values["class_names"],
        preset=spec.preset,
        image_size=spec.image_size,
        device=device,
        multi_label=spec.values["multi_label"],
    )
