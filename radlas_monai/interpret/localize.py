"""Lesion map -> everything a reader or a metric needs: mask, scored boxes, scored marks, an image score.

:func:`localize` is the single implementation behind the lesion_localization bundle's outputs, the MONAI Label
infer task and the localization metrics. Scores are raw map values (maps are in ``[0, 1]`` by the project's
convention), never per-image normalised, so they compare across images; the thresholds that make the mask act on
the min-max-normalised map (see :func:`~radlas_monai.interpret.threshold.threshold_map`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radlas_monai.interpret.components import ScoredBox, component_boxes
from radlas_monai.interpret.peaks import ScoredPoint, find_peaks
from radlas_monai.interpret.threshold import as_heatmap, threshold_map

__all__ = ["Localization", "localize"]


@dataclass
class Localization:
    """The localization of one lesion map.

    Attributes:
        mask: ``(H, W)`` uint8 in ``{0, 1}``: the thresholded map, restricted to the components kept as boxes.
        boxes: scored boxes of the kept components, by descending score.
        peaks: scored local maxima (FROC marks), by descending score.
        image_score: the map's maximum (raw units): the image-level lesion score.
        heatmap_range: ``(min, max)`` of the raw map.
        method: the threshold method used; ``value`` its parameter.
    """

    mask: np.ndarray
    boxes: list[ScoredBox] = field(default_factory=list)
    peaks: list[ScoredPoint] = field(default_factory=list)
    image_score: float = 0.0
    heatmap_range: tuple[float, float] = (0.0, 0.0)
    method: str = "otsu"
    value: float | None = None

    def to_json(self, include_mask: bool = True) -> dict[str, Any]:
        """Plain JSON types (``json.dumps``-able).

        Args:
            include_mask: add ``"mask_rle"``: the mask as a SIIM relative column-major run-length string
                (decode with :func:`radlas_monai.data.rle.rle_decode`), and ``"mask_shape"`` ``[H, W]``.

        Returns:
            ``{"boxes": [{"box", "score", "area"}], "peaks": [{"x", "y", "score"}], "image_score",
            "heatmap_range": [min, max], "method", "value", "mask_area"}`` plus the mask fields.
        """
        out: dict[str, Any] = {
            "boxes": [b.to_json() for b in self.boxes],
            "peaks": [p.to_json() for p in self.peaks],
            "image_score": float(self.image_score),
            "heatmap_range": [float(self.heatmap_range[0]), float(self.heatmap_range[1])],
            "method": self.method,
            "value": None if self.value is None else float(self.value),
            "mask_area": int(np.count_nonzero(self.mask)),
        }
        if include_mask:
            from radlas_monai.data.rle import rle_encode

            out["mask_shape"] = [int(s) for s in self.mask.shape]
            out["mask_rle"] = rle_encode(self.mask)
        return out


def localize(
    heatmap: Any,
    method: str = "otsu",
    value: float | None = None,
    min_area: int = 16,
    max_boxes: int = 10,
    connectivity: int = 2,
    min_distance: int = 8,
    max_peaks: int = 20,
    peak_threshold: float = 0.0,
) -> Localization:
    """Threshold a lesion map, box its components and mark its local maxima.

    Args:
        heatmap: ``(H, W)`` (or ``(1, H, W)``) map, numpy array or torch tensor.
        method: ``"fixed"``, ``"otsu"`` or ``"percentile"`` (see :func:`~radlas_monai.interpret.threshold_map`).
        value: the threshold method's parameter.
        min_area: components smaller than this many pixels are dropped from the mask and the boxes.
        max_boxes: keep at most this many components (the highest-scoring); the mask keeps only those.
        connectivity: 1 for 4-connected, 2 for 8-connected components.
        min_distance: peak window half-width and suppression distance (pixels).
        max_peaks: at most this many peaks.
        peak_threshold: peaks must score strictly above this (raw map units).

    Returns:
        The :class:`Localization`.

    Raises:
        ValueError: on a bad map or parameter (each names the offending value).
    """
    if int(max_boxes) < 0:
        raise ValueError(f"max_boxes must be non-negative, got {max_boxes}")
    heat = as_heatmap(heatmap)
    raw_mask = threshold_map(heat, method=method, value=value)
    labels, ids, boxes = component_boxes(raw_mask, heat, min_area=min_area, connectivity=connectivity)
    boxes = boxes[: int(max_boxes)]
    mask = np.isin(labels, ids[: len(boxes)]).astype(np.uint8)
    peaks = find_peaks(heat, min_distance=min_distance, threshold=peak_threshold, max_peaks=max_peaks)
    low, high = float(heat.min()), float(heat.max())
    return Localization(
        mask=mask,
        boxes=boxes,
        peaks=peaks,
        image_score=high,
        heatmap_range=(low, high),
        method=method,
        value=value,
    )
