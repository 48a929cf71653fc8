"""Area under the ROC curve: image level (exact) and pixel level (streaming, two fixed histograms).

Both are the Mann-Whitney / Wilcoxon statistic ``P(score_pos > score_neg) + 0.5 P(score_pos == score_neg)``
(Hanley and McNeil, Radiology 143, 1982), the AUROC of lesion-map evaluations (pixel level: every lesion pixel
against every non-lesion pixel; image level: the map's maximum as the image's lesion score).

:class:`PixelAUROC` never buffers pixels: its state is two ``n_bins`` histograms of map values over ``[0, 1]``
(lesion and non-lesion pixels). Values sharing a bin count as ties, so the result equals the exact AUROC of the
values quantised to the bins: exact to within bin resolution. Map values outside ``[0, 1]`` are clipped (with one
warning per metric object), following the project's map convention.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from radlas_monai.interpret.threshold import as_heatmap

__all__ = ["PixelAUROC", "auc_from_histograms", "roc_auc", "value_histogram", "weighted_auc"]

logger = logging.getLogger(__name__)


def weighted_auc(pos: Any, neg: Any, pos_weights: Any = None, neg_weights: Any = None) -> float:
    """Mann-Whitney AUROC of positive against negative scores, ties counting one half, with optional weights.

    Args:
        pos: ``(P,)`` scores of positives.
        neg: ``(N,)`` scores of negatives.
        pos_weights: optional ``(P,)`` non-negative weights (e.g. bootstrap multiplicities).
        neg_weights: optional ``(N,)`` non-negative weights.

    Returns:
        The AUROC, NaN when either side has no (weighted) sample.

    Raises:
        ValueError: when a weight vector does not match its scores.
    """
    p, n = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    wp = np.ones_like(p) if pos_weights is None else np.asarray(pos_weights, dtype=np.float64).ravel()
    wn = np.ones_like(n) if neg_weights is None else np.asarray(neg_weights, dtype=np.float64).ravel()
    if wp.shape != p.shape or wn.shape != n.shape:
        raise ValueError(f"weights {wp.shape}, {wn.shape} do not match scores {p.shape}, {n.shape}")
    total_p, total_n = wp.sum(), wn.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    order = np.argsort(n, kind="stable")
    n_sorted, cum = n[order], np.concatenate([[0.0], np.cumsum(wn[order])])
    below = cum[np.searchsorted(n_sorted, p, side="left")]
    below_or_equal = cum[np.searchsorted(n_sorted, p, side="right")]
    return float((wp * (below + 0.5 * (below_or_equal - below))).sum() / (total_p * total_n))


def roc_auc(scores: Any, labels: Any, weights: Any = None) -> float:
    """Exact image-level AUROC.

    Args:
        scores: ``(N,)`` scores (e.g. each map's maximum).
        labels: ``(N,)`` 1 for abnormal, 0 for normal.
        weights: optional ``(N,)`` non-negative weights.

    Returns:
        The AUROC, NaN without both classes.

    Raises:
        ValueError: on mismatched lengths.
    """
    s, y = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel() != 0
    if s.shape != y.shape:
        raise ValueError(f"scores shape {s.shape} differs from labels shape {y.shape}")
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != s.shape:
        raise ValueError(f"weights shape {w.shape} differs from scores shape {s.shape}")
    return weighted_auc(s[y], s[~y], w[y], w[~y])


def auc_from_histograms(pos_hist: Any, neg_hist: Any) -> float:
    """AUROC of two histograms over the same ascending bins (ties within a bin count one half).

    Args:
        pos_hist: ``(B,)`` counts (or weights) of positives per bin.
        neg_hist: ``(B,)`` counts of negatives per bin.

    Returns:
        The AUROC, NaN when either histogram is empty.

    Raises:
        ValueError: when the histograms differ in shape.
    """
    p, n = np.asarray(pos_hist, dtype=np.float64), np.asarray(neg_hist, dtype=np.float64)
    if p.shape != n.shape or p.ndim != 1:
        raise ValueError(f"histograms must be 1D of the same length, got {p.shape} and {n.shape}")
    total_p, total_n = p.sum(), n.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(n)[:-1]])
    return float((p * (below + 0.5 * n)).sum() / (total_p * total_n))


def value_histogram(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Counts of values (clipped to ``[0, 1]``) in ``n_bins`` equal bins; 1.0 falls in the last bin."""
    index = np.minimum((np.clip(values, 0.0, 1.0) * n_bins).astype(np.int64), n_bins - 1)
    return np.bincount(index.ravel(), minlength=n_bins).astype(np.int64)


class PixelAUROC:
    """Streaming pixel-level AUROC over many images (lesion pixels vs non-lesion pixels).

    Example::

        metric = PixelAUROC(n_bins=1000)
        for heatmap, region in pairs:
            metric(heatmap, region)          # or metric.update(...)
        auroc = metric.aggregate()

    Args:
        n_bins: histogram bins over ``[0, 1]`` (resolution ``1 / n_bins``).

    Raises:
        ValueError: when ``n_bins < 2``.
    """

    def __init__(self, n_bins: int = 1000) -> None:
        if int(n_bins) < 2:
            raise ValueError(f"n_bins must be at least 2, got {n_bins}")
        self.n_bins = int(n_bins)
        self._warned = False
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self.pos_hist = np.zeros(self.n_bins, dtype=np.int64)
        self.neg_hist = np.zeros(self.n_bins, dtype=np.int64)

    def histograms(self, heatmap: Any, region: Any, valid: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Lesion and non-lesion histograms of one image (without adding them to the state).

        Args:
            heatmap: ``(H, W)`` map, values expected in ``[0, 1]``.
            region: ``(H, W)`` lesion mask.
            valid: optional ``(H, W)`` mask of the pixels to count at all (e.g. the lungs).

        Returns:
            ``(pos_hist, neg_hist)`` int64 ``(n_bins,)``.

        Raises:
            ValueError: on bad or differing shapes.
        """
        heat = as_heatmap(heatmap)
        inside = np.asarray(region.detach().cpu().numpy() if hasattr(region, "detach") else region) != 0
        if inside.ndim == 3 and inside.shape[0] == 1:
            inside = inside[0]
        if inside.shape != heat.shape:
            raise ValueError(f"region shape {inside.shape} differs from heatmap shape {heat.shape}")
        if not self._warned and (float(heat.min()) < 0.0 or float(heat.max()) > 1.0):
            logger.warning("PixelAUROC: map values outside [0, 1] (%g..%g) are clipped", heat.min(), heat.max())
            self._warned = True
        keep = np.ones(heat.shape, dtype=bool) if valid is None else np.asarray(valid) != 0
        return value_histogram(heat[inside & keep], self.n_bins), value_histogram(heat[~inside & keep], self.n_bins)

    def update(self, heatmap: Any, region: Any, valid: Any = None) -> None:
        """Add one image (see :meth:`histograms` for the arguments)."""
        pos, neg = self.histograms(heatmap, region, valid)
        self.pos_hist += pos
        self.neg_hist += neg

    __call__ = update

    def aggregate(self) -> float:
        """The pixel AUROC of all images so far (NaN without both lesion and non-lesion pixels)."""
        return auc_from_histograms(self.pos_hist, self.neg_hist)
