"""Pointing game: does the map's peak fall on the lesion? (Zhang et al., "Top-down neural attention by excitation
backprop", IJCV 126, 2018.)

For an image and a finding, the map's global maximum (:func:`~radlas_monai.interpret.peaks.map_peak`) is a *hit*
when it lies inside the acceptance region of any lesion of that finding, or within ``tolerance`` pixels of it
(Zhang et al. used 15 px at 224 px; our default is 0, i.e. strictly inside the box / radius / mask). The score is
the fraction of hits over (image, finding) pairs with a lesion. A constant map has no peak and misses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radlas_monai.interpret.peaks import map_peak
from radlas_monai.interpret.threshold import as_heatmap
from radlas_monai.metrics.annotation import LesionAnnotation

__all__ = ["lesion_pointing_hits", "pointing_game"]


def lesion_pointing_hits(heatmap: Any, annotation: LesionAnnotation, tolerance: float = 0.0) -> np.ndarray:
    """Whether the map's peak hits each lesion.

    Args:
        heatmap: ``(H, W)`` map on the annotation's grid.
        annotation: the image's ground truth.
        tolerance: pixels of slack around every acceptance region.

    Returns:
        bool ``(L,)``, one entry per lesion (all False for a constant map).

    Raises:
        ValueError: when the map is not 2D, its shape differs from the annotation's, or ``tolerance`` is negative.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be non-negative, got {tolerance}")
    heat = as_heatmap(heatmap)
    if heat.shape != tuple(annotation.shape):
        raise ValueError(f"heatmap shape {heat.shape} differs from the annotation's {annotation.shape}")
    peak = map_peak(heat)
    if peak is None or not annotation.lesions:
        return np.zeros(len(annotation.lesions), dtype=bool)
    return annotation.hits([peak.x], [peak.y], tolerance=tolerance)[0]


def pointing_game(heatmap: Any, annotation: LesionAnnotation, tolerance: float = 0.0) -> dict[str, bool]:
    """Pointing-game hit per finding of the image.

    Args:
        heatmap: ``(H, W)`` map on the annotation's grid.
        annotation: the image's ground truth.
        tolerance: pixels of slack around every acceptance region.

    Returns:
        ``{finding: hit}`` for every finding that has at least one lesion (empty for a normal image).

    Raises:
        ValueError: see :func:`lesion_pointing_hits`.
    """
    hits = lesion_pointing_hits(heatmap, annotation, tolerance)
    names = np.asarray(annotation.lesion_findings(), dtype=object)
    return {str(name): bool(hits[names == name].any()) for name in dict.fromkeys(names.tolist())}
