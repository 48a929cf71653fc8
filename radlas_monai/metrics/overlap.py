"""Overlap of a thresholded map with the lesion region: IoU, Dice, and mean IoU over thresholds.

The map is min-max normalised per image and binarised at ``n >= T`` (the ``"fixed"`` method of
:func:`~radlas_monai.interpret.threshold.threshold_map`; a constant map gives an empty mask). Mean IoU averages the
IoU over ``T`` in ``{0.1, 0.2, 0.3, 0.4, 0.5}`` (the project's protocol). Scoring saliency maps by the IoU of
thresholded maps with the annotated region follows Saporta et al., "Benchmarking saliency methods for chest X-ray
interpretation", Nat. Mach. Intell. 4, 2022.

``IoU = |P & G| / |P | G|`` and ``Dice = 2 |P & G| / (|P| + |G|)``; both are 1 when ``P`` and ``G`` are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from radlas_monai.interpret.threshold import normalize_map

__all__ = ["MEAN_IOU_THRESHOLDS", "iou_dice", "mean_iou", "overlap_at_thresholds"]

#: Thresholds of the normalised map averaged by :func:`mean_iou`.
MEAN_IOU_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)


def _as_bool(mask: Any, name: str) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"expected {name} of shape (H, W), got {tuple(np.shape(mask))}")
    return array != 0


def iou_dice(pred: Any, gt: Any) -> tuple[float, float]:
    """IoU and Dice of two binary masks.

    Args:
        pred: ``(H, W)`` predicted mask (nonzero = lesion).
        gt: ``(H, W)`` ground-truth mask.

    Returns:
        ``(iou, dice)``; ``(1.0, 1.0)`` when both are empty.

    Raises:
        ValueError: on non-2D or differing shapes.
    """
    p, g = _as_bool(pred, "pred"), _as_bool(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} differs from gt shape {g.shape}")
    inter, sp, sg = np.count_nonzero(p & g), np.count_nonzero(p), np.count_nonzero(g)
    if sp + sg == 0:
        return 1.0, 1.0
    return inter / (sp + sg - inter), 2.0 * inter / (sp + sg)


def overlap_at_thresholds(
    heatmap: Any, gt: Any, thresholds: Sequence[float] = MEAN_IOU_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """IoU and Dice of ``normalize_map(heatmap) >= T`` with ``gt`` at every threshold ``T``.

    Args:
        heatmap: ``(H, W)`` map.
        gt: ``(H, W)`` ground-truth mask.
        thresholds: values in ``[0, 1]`` on the normalised map.

    Returns:
        ``(iou (T,), dice (T,))`` float64 arrays.

    Raises:
        ValueError: on bad or differing shapes, or thresholds outside ``[0, 1]``.
    """
    t = np.asarray(thresholds, dtype=np.float32).ravel()
    if t.size == 0 or (t < 0).any() or (t > 1).any():
        raise ValueError(f"thresholds must be a non-empty list of values in [0, 1], got {list(thresholds)}")
    norm, g = normalize_map(heatmap), _as_bool(gt, "gt")
    if norm.shape != g.shape:
        raise ValueError(f"heatmap shape {norm.shape} differs from gt shape {g.shape}")
    if float(norm.max()) <= 0.0:  # constant map: empty prediction at every threshold
        pred_counts, inter = np.zeros(t.size), np.zeros(t.size)
    else:
        pred_counts = (norm.ravel()[None, :] >= t[:, None]).sum(axis=1).astype(np.float64)
        inter = (norm[g][None, :] >= t[:, None]).sum(axis=1).astype(np.float64)
    sg = float(np.count_nonzero(g))
    total = pred_counts + sg
    safe = np.where(total > 0, total, 1.0)
    iou = np.where(total > 0, inter / np.maximum(total - inter, 1e-12), 1.0)
    dice = np.where(total > 0, 2.0 * inter / safe, 1.0)
    return iou, dice


def mean_iou(heatmap: Any, gt: Any, thresholds: Sequence[float] = MEAN_IOU_THRESHOLDS) -> float:
    """Mean IoU over thresholds of the normalised map (default 0.1, 0.2, ..., 0.5).

    Args:
        heatmap: ``(H, W)`` map.
        gt: ``(H, W)`` ground-truth mask.
        thresholds: values in ``[0, 1]``.

    Returns:
        The mean IoU.

    Raises:
        ValueError: see :func:`overlap_at_thresholds`.
    """
    return float(overlap_at_thresholds(heatmap, gt, thresholds)[0].mean())
