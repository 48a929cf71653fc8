"""Annotated radiographs for localization evaluation: image and lesion annotation at the evaluated resolution.

A datalist item (see :mod:`radlas_monai.data.datalist`) carries any of ``boxes`` (+ ``box_findings``), ``centers`` +
``radii`` and ``mask``, in the pixel coordinates of its own image. :class:`LoadAnnotatedRadiograph` reads the image,
resizes it to ``image_size x image_size`` and rescales every annotation to that grid, so a method's map and the
annotation always share one geometry:

* boxes ``[x0, y0, x1, y1]``: ``x * S / W``, ``y * S / H``, rounded outwards (``floor`` / ``ceil``) and clipped;
* centres ``[x, y]``: the same scale, kept as floats; radii: ``r * sqrt(sx * sy)`` (exact for square pixels);
* masks: area-averaged to ``S x S``, a pixel is lesion when at least half of it was (majority downsampling).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["LoadAnnotatedRadiograph", "collate_annotated", "has_annotation", "rescale_annotation"]

logger = logging.getLogger(__name__)

_GEOMETRY_KEYS = ("boxes", "centers", "mask")


def has_annotation(item: Mapping[str, Any]) -> bool:
    """Whether an item can be scored: a lesion geometry (boxes, centres or a mask), or a normal image.

    An item is normal when it lists no findings and its ``label`` (if any) has no positive entry.
    """
    if any(item.get(key) for key in _GEOMETRY_KEYS):
        return True
    return not item.get("findings") and not any(int(v) == 1 for v in item.get("label", []) or [])


def _scaled_boxes(boxes: Sequence[Sequence[float]], sx: float, sy: float, size: int) -> list[list[int]]:
    out = []
    for x0, y0, x1, y1 in boxes:
        box = [math.floor(x0 * sx), math.floor(y0 * sy), math.ceil(x1 * sx), math.ceil(y1 * sy)]
        out.append([min(max(v, 0), size) for v in box])
    return out


def rescale_annotation(
    item: Mapping[str, Any], shape: Sequence[int], size: int, mask: np.ndarray | None = None
) -> dict[str, Any]:
    """An item's annotation on the ``size x size`` grid of a resized image.

    Args:
        item: a datalist item (``boxes``, ``box_findings``, ``centers``, ``radii``, ``findings``).
        shape: the original image's ``(H, W)``.
        size: the evaluated side ``S``.
        mask: the lesion mask already at ``(S, S)`` (bool), or ``None``.

    Returns:
        ``{"boxes", "box_findings", "centers", "radii", "mask", "findings", "patient"}`` at ``S x S`` (absent
        entries are empty lists / ``None``; ``patient`` is the bootstrap's resampling unit).

    Raises:
        ValueError: ``centers`` without matching ``radii``, or ``box_findings`` not matching ``boxes``.
    """
    height, width = (int(s) for s in shape)
    sx, sy = size / width, size / height
    boxes, centers = item.get("boxes") or [], item.get("centers") or []
    radii, box_findings = item.get("radii") or [], item.get("box_findings") or []
    if centers and len(radii) != len(centers):
        raise ValueError(f"item {item.get('image')}: {len(centers)} centers but {len(radii)} radii")
    if box_findings and len(box_findings) != len(boxes):
        raise ValueError(f"item {item.get('image')}: {len(boxes)} boxes but {len(box_findings)} box_findings")
    return {
        "boxes": _scaled_boxes(boxes, sx, sy, size),
        "box_findings": list(box_findings),
        "centers": [[float(x) * sx, float(y) * sy] for x, y in centers],
        "radii": [float(r) * math.sqrt(sx * sy) for r in radii],
        "mask": mask,
        "findings": list(item.get("findings") or []),
        "patient": item.get("patient"),
    }


class LoadAnnotatedRadiograph:
    """Datalist item -> ``{"image": (1, S, S) float32 in [0, 1], "annotation": {...}, "image_id": str}``.

    Args:
        image_size: the evaluated side ``S``.
        mask_threshold: fraction of a resized pixel that must be lesion for it to count as lesion.

    Raises:
        RadiographReadError: from the loader, for an unreadable image or mask.
    """

    def __init__(self, image_size: int, mask_threshold: float = 0.5) -> None:
        from radlas_monai.data.loader import LoadRadiograph

        self.image_size = int(image_size)
        self.mask_threshold = float(mask_threshold)
        self._image_loader = LoadRadiograph()
        self._mask_loader = LoadRadiograph(mask=True)

    def _resize(self, image: torch.Tensor) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        if tuple(image.shape[-2:]) == size:
            return image
        return F.interpolate(image[None], size=size, mode="area")[0]

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        image = self._image_loader(item["image"])
        shape = tuple(int(s) for s in image.shape[-2:])
        mask = None
        if item.get("mask"):
            raw = self._mask_loader(item["mask"]).as_tensor()
            if tuple(raw.shape[-2:]) != shape:
                raise ValueError(f"mask {item['mask']} is {tuple(raw.shape[-2:])}, its image {shape}")
            mask = (self._resize((raw > 0).float())[0] >= self.mask_threshold).numpy()
        return {
            "image": self._resize(image.as_tensor().float()),
            "annotation": rescale_annotation(item, shape, self.image_size, mask),
            "image_id": str(image.meta.get("image_id", "")),
        }


def collate_annotated(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate :class:`LoadAnnotatedRadiograph` samples: images stacked ``(B, 1, S, S)``, annotations as a list."""
    return {
        "image": torch.stack([sample["image"] for sample in batch]),
        "annotation": [sample["annotation"] for sample in batch],
        "image_id": [sample["image_id"] for sample in batch],
    }
