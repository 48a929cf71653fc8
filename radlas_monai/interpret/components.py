"""Binary mask -> connected components -> scored boxes (and boxes back to a mask).

Boxes follow the project convention ``[x0, y0, x1, y1]`` in pixel coordinates of the image's own grid
(x = column, y = row; ``x1``/``y1`` exclusive), so a box covers ``mask[y0:y1, x0:x1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from radlas_monai.interpret.threshold import as_heatmap

__all__ = ["ScoredBox", "boxes_to_mask", "component_boxes", "label_components", "mask_to_boxes"]


@dataclass(frozen=True)
class ScoredBox:
    """One connected component of a mask.

    Attributes:
        box: ``[x0, y0, x1, y1]`` integer pixel box, ``x1``/``y1`` exclusive.
        score: the largest heat-map value inside the component (1.0 when no map was given).
        area: number of pixels of the component (not of the box).
    """

    box: list[int]
    score: float
    area: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types: ``{"box": [x0, y0, x1, y1], "score": float, "area": int}``."""
        return {"box": [int(v) for v in self.box], "score": float(self.score), "area": int(self.area)}


def _as_mask(mask: Any) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected mask of shape (H, W) or (1, H, W), got {tuple(np.shape(mask))}")
    return array != 0


def label_components(mask: Any, connectivity: int = 2) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary mask.

    Args:
        mask: ``(H, W)`` array or tensor, nonzero = foreground.
        connectivity: 1 for 4-connected, 2 for 8-connected components.

    Returns:
        ``(labels (H, W) int32, count)``; labels are ``1..count`` in raster order of first pixel, 0 = background.

    Raises:
        ValueError: on a bad shape or a connectivity other than 1 or 2.
    """
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-neighbours) or 2 (8-neighbours), got {connectivity}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    labels, count = ndimage.label(_as_mask(mask), structure=structure)
    return labels.astype(np.int32, copy=False), int(count)


def component_boxes(
    mask: Any, heatmap: Any = None, min_area: int = 1, connectivity: int = 2
) -> tuple[np.ndarray, np.ndarray, list[ScoredBox]]:
    """:func:`mask_to_boxes` that also returns the component labels, so callers can rebuild a mask of the
    components they keep (``np.isin(labels, ids[:k])``).

    Args:
        mask: ``(H, W)`` binary mask (nonzero = foreground).
        heatmap: optional ``(H, W)`` map of the same shape that scores the components.
        min_area: components with fewer pixels are dropped.
        connectivity: 1 for 4-connected, 2 for 8-connected components.

    Returns:
        ``(labels (H, W) int32, ids, boxes)`` where ``ids[i]`` is the label of ``boxes[i]``.

    Raises:
        ValueError: on bad shapes, shapes that differ, ``min_area < 1`` or a bad connectivity.
    """
    if min_area < 1:
        raise ValueError(f"min_area must be at least 1 pixel, got {min_area}")
    labels, count = label_components(mask, connectivity)
    heat = None
    if heatmap is not None:
        heat = as_heatmap(heatmap)
        if heat.shape != labels.shape:
            raise ValueError(f"heatmap shape {heat.shape} differs from mask shape {labels.shape}")
    if count == 0:
        return labels, np.zeros(0, dtype=np.int64), []
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    if heat is None:
        scores = np.ones(count)
    else:  # per-label maximum; np.maximum.at is much faster than ndimage.maximum on many labels
        best = np.full(count + 1, -np.inf)
        np.maximum.at(best, labels.ravel(), heat.ravel().astype(np.float64))
        scores = best[1:]
    slices = ndimage.find_objects(labels)
    keep = np.flatnonzero(areas >= min_area)
    order = keep[np.lexsort((keep, -areas[keep], -scores[keep]))]
    boxes = [
        ScoredBox(
            box=[int(slices[i][1].start), int(slices[i][0].start), int(slices[i][1].stop), int(slices[i][0].stop)],
            score=float(scores[i]),
            area=int(areas[i]),
        )
        for i in order
    ]
    return labels, order + 1, boxes


def mask_to_boxes(mask: Any, heatmap: Any = None, min_area: int = 1, connectivity: int = 2) -> list[ScoredBox]:
    """Bounding boxes of the connected components of a mask, scored by the map.

    Args:
        mask: ``(H, W)`` binary mask (numpy array or torch tensor, nonzero = foreground).
        heatmap: optional ``(H, W)`` map of the same shape; a box's score is the map's maximum inside its
            component (the raw map value, not normalised, so scores compare across images).
        min_area: components with fewer pixels are dropped.
        connectivity: 1 for 4-connected, 2 for 8-connected components.

    Returns:
        Boxes sorted by descending score, then descending area, then raster order of the component.

    Raises:
        ValueError: on bad shapes, shapes that differ, ``min_area < 1`` or a bad connectivity.
    """
    return component_boxes(mask, heatmap, min_area, connectivity)[2]


def boxes_to_mask(boxes: Sequence[Sequence[float]] | np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Rasterise boxes into a mask: pixel ``(x, y)`` is inside ``[x0, y0, x1, y1]`` when ``x0 <= x < x1`` and
    ``y0 <= y < y1`` (pixel centres at integer coordinates; fractional boxes are allowed).

    Args:
        boxes: ``(N, 4)`` boxes ``[x0, y0, x1, y1]``.
        shape: ``(H, W)`` of the output.

    Returns:
        bool ``(H, W)`` union of the boxes (clipped to the image).

    Raises:
        ValueError: when ``boxes`` is not ``(N, 4)`` or ``shape`` is not 2D.
    """
    if len(shape) != 2:
        raise ValueError(f"expected shape (H, W), got {tuple(shape)}")
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        array = np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {array.shape}")
    height, width = int(shape[0]), int(shape[1])
    mask = np.zeros((height, width), dtype=bool)
    starts, stops = np.ceil(array[:, :2]), np.ceil(array[:, 2:])
    for (x0, y0), (x1, y1) in zip(starts.astype(np.int64), stops.astype(np.int64)):
        mask[max(y0, 0) : max(min(y1, height), 0), max(x0, 0) : max(min(x1, width), 0)] = True
    return mask
