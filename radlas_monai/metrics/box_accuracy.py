"""Box accuracy at T(IoU) and T(IoBB): the ChestX-ray8 localization protocol (Wang et al., "ChestX-ray8:
Hospital-scale chest X-ray database and benchmarks on weakly-supervised classification and localization of common
thorax diseases", CVPR 2017, Sec. 5.2 and Table 3).

Boxes predicted from the thresholded map (:func:`~radlas_monai.interpret.localize.localize`) are compared with each
ground-truth box. A ground-truth box is *correctly localized* at threshold ``T`` when some predicted box has
``IoU > T`` (Intersection over Union), respectively ``IoBB > T`` (Intersection over the detected B-Box area, i.e.
``|P & G| / |P|``). Accuracy is the fraction of correctly localized ground-truth boxes, at
``T in {0.1, 0.25, 0.5, 0.75, 0.9}``. Here every predicted box is considered (the best overlap counts), and boxes
are continuous ``[x0, y0, x1, y1]`` with ``x1``/``y1`` exclusive, so a box's area is ``(x1 - x0) (y1 - y0)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BOX_THRESHOLDS", "best_box_overlaps", "box_accuracy", "box_intersection", "box_iobb", "box_iou"]

#: T(IoU) and T(IoBB) of the ChestX-ray8 protocol.
BOX_THRESHOLDS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)


def _boxes(boxes: Any, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"expected {name} of shape (N, 4) as [x0, y0, x1, y1], got {array.shape}")
    return array


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_intersection(gt: Any, pred: Any) -> np.ndarray:
    """Pairwise intersection areas ``(N, M)`` of ``gt (N, 4)`` and ``pred (M, 4)`` boxes.

    Raises:
        ValueError: when either is not ``(N, 4)``.
    """
    g, p = _boxes(gt, "gt boxes"), _boxes(pred, "predicted boxes")
    w = np.minimum(g[:, None, 2], p[None, :, 2]) - np.maximum(g[:, None, 0], p[None, :, 0])
    h = np.minimum(g[:, None, 3], p[None, :, 3]) - np.maximum(g[:, None, 1], p[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def box_iou(gt: Any, pred: Any) -> np.ndarray:
    """Pairwise IoU ``(N, M)`` (0 where the union is empty).

    Raises:
        ValueError: when either is not ``(N, 4)``.
    """
    g, p = _boxes(gt, "gt boxes"), _boxes(pred, "predicted boxes")
    inter = box_intersection(g, p)
    union = _area(g)[:, None] + _area(p)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iobb(gt: Any, pred: Any) -> np.ndarray:
    """Pairwise intersection over the *predicted* box area ``(N, M)`` (0 for an empty predicted box).

    Raises:
        ValueError: when either is not ``(N, 4)``.
    """
    g, p = _boxes(gt, "gt boxes"), _boxes(pred, "predicted boxes")
    inter = box_intersection(g, p)
    area = _area(p)[None, :]
    return np.where(area > 0, inter / np.where(area > 0, area, 1.0), 0.0)


def best_box_overlaps(gt: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU and best IoBB of every ground-truth box over the predicted boxes.

    Args:
        gt: ``(N, 4)`` ground-truth boxes.
        pred: ``(M, 4)`` predicted boxes (may be empty).

    Returns:
        ``(iou (N,), iobb (N,))``; zeros when there is no predicted box.

    Raises:
        ValueError: when either is not ``(N, 4)``.
    """
    g, p = _boxes(gt, "gt boxes"), _boxes(pred, "predicted boxes")
    if p.shape[0] == 0:
        return np.zeros(g.shape[0]), np.zeros(g.shape[0])
    return box_iou(g, p).max(axis=1), box_iobb(g, p).max(axis=1)


def box_accuracy(
    best_overlap: Any, thresholds: Sequence[float] = BOX_THRESHOLDS, weights: Any = None
) -> dict[float, float]:
    """Fraction of ground-truth boxes whose best overlap exceeds each threshold (``overlap > T``).

    Args:
        best_overlap: ``(N,)`` best IoU (or IoBB) per ground-truth box, from :func:`best_box_overlaps`.
        thresholds: the T values.
        weights: optional ``(N,)`` non-negative weights per box (e.g. bootstrap multiplicities).

    Returns:
        ``{T: accuracy}``; NaN accuracies when there is no box (or zero total weight).

    Raises:
        ValueError: when ``weights`` does not match ``best_overlap``.
    """
    values = np.asarray(best_overlap, dtype=np.float64).ravel()
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != values.shape:
        raise ValueError(f"weights shape {w.shape} differs from best_overlap shape {values.shape}")
    total = w.sum()
    return {float(t): float((w * (values > t)).sum() / total) if total > 0 else float("nan") for t in thresholds}
