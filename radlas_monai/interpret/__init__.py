"""Lesion maps -> masks, boxes, marks and overlays: one implementation for the bundles, the metrics and MONAI Label.

- :mod:`~radlas_monai.interpret.threshold`: :func:`normalize_map`, :func:`threshold_map` (fixed / Otsu / percentile)
- :mod:`~radlas_monai.interpret.components`: :func:`mask_to_boxes` -> :class:`ScoredBox`, :func:`boxes_to_mask`
- :mod:`~radlas_monai.interpret.peaks`: :func:`find_peaks` -> :class:`ScoredPoint` (FROC marks), :func:`map_peak`
- :mod:`~radlas_monai.interpret.localize`: :func:`localize` -> :class:`Localization`
- :mod:`~radlas_monai.interpret.overlay`: :func:`overlay_heatmap`, :func:`hot_colormap`
"""

from __future__ import annotations

from radlas_monai.interpret.components import (
    ScoredBox,
    boxes_to_mask,
    component_boxes,
    label_components,
    mask_to_boxes,
)
from radlas_monai.interpret.localize import Localization, localize
from radlas_monai.interpret.overlay import hot_colormap, overlay_heatmap
from radlas_monai.interpret.peaks import ScoredPoint, find_peaks, map_peak
from radlas_monai.interpret.threshold import (
    THRESHOLD_METHODS,
    as_heatmap,
    normalize_map,
    otsu_threshold,
    threshold_map,
)

__all__ = [
    "THRESHOLD_METHODS",
    "Localization",
    "ScoredBox",
    "ScoredPoint",
    "as_heatmap",
    "boxes_to_mask",
    "component_boxes",
    "find_peaks",
    "hot_colormap",
    "label_components",
    "localize",
    "map_peak",
    "mask_to_boxes",
    "normalize_map",
    "otsu_threshold",
    "overlay_heatmap",
    "threshold_map",
]
