"""Lesion map -> scored points (local maxima): the marks of an FROC observer and the peak of the pointing game.

A pixel is a candidate peak when it equals the maximum of the map in the ``(2 d + 1) x (2 d + 1)`` window around
it (``d = min_distance``). Flat tops are handled explicitly, because clipped or binary maps have them:

* a connected plateau of candidates is **one** peak, placed on its pixel nearest to the plateau's centroid
  (ties: raster order);
* a plateau that touches an equal-valued pixel which is *not* a candidate (a flat shoulder that rises to a higher
  value within ``d``, e.g. a flat background around a blob) is not a peak;
* a constant map has no peaks.

Peaks are then taken greedily by descending score (ties: raster order), skipping any within Euclidean distance
``min_distance`` of a peak already taken, until ``max_peaks``. Points are ``x = column``, ``y = row`` pixel
centres; the score is the raw map value there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from radlas_monai.interpret.threshold import as_heatmap

__all__ = ["ScoredPoint", "find_peaks", "map_peak"]

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ScoredPoint:
    """A mark on the image: ``x`` (column), ``y`` (row) and the map value ``score`` there."""

    x: float
    y: float
    score: float

    def to_json(self) -> dict[str, float]:
        """Plain JSON types: ``{"x": float, "y": float, "score": float}``."""
        return {"x": float(self.x), "y": float(self.y), "score": float(self.score)}


_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _neighbour_flags(heat: np.ndarray, candidate: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple:
    """For candidate pixels ``(ys, xs)``: whether an 8-neighbour has the same value, and whether such a
    neighbour is not a candidate (a flat shoulder)."""
    padded_heat = np.pad(heat, 1, mode="constant", constant_values=np.nan)
    padded_cand = np.pad(candidate, 1, mode="constant", constant_values=True)
    values = heat[ys, xs]
    equal = np.zeros(ys.size, dtype=bool)
    shoulder = np.zeros(ys.size, dtype=bool)
    for dy, dx in _OFFSETS:
        same = padded_heat[ys + 1 + dy, xs + 1 + dx] == values
        equal |= same
        shoulder |= same & ~padded_cand[ys + 1 + dy, xs + 1 + dx]
    return equal, shoulder


def _plateau_representatives(heat: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One pixel per connected plateau of candidates (nearest its centroid); plateaus on a shoulder dropped."""
    ys, xs = np.nonzero(candidate)
    equal, shoulder = _neighbour_flags(heat, candidate, ys, xs)
    if not equal.any():  # the usual case: every candidate is a strict, isolated maximum
        return ys, xs
    labels, count = ndimage.label(candidate, structure=_EIGHT)
    lab = labels[ys, xs]
    bad = np.zeros(count + 1, dtype=bool)
    bad[lab[shoulder]] = True
    keep = ~bad[lab]
    ys, xs, lab = ys[keep], xs[keep], lab[keep]
    if lab.size == 0:
        return ys, xs
    counts = np.bincount(lab, minlength=count + 1).astype(np.float64)
    counts[counts == 0] = 1.0
    cy = np.bincount(lab, weights=ys, minlength=count + 1) / counts
    cx = np.bincount(lab, weights=xs, minlength=count + 1) / counts
    dist = (ys - cy[lab]) ** 2 + (xs - cx[lab]) ** 2
    order = np.lexsort((xs, ys, dist, lab))
    first = order[np.r_[True, lab[order][1:] != lab[order][:-1]]]
    return ys[first], xs[first]


def find_peaks(heatmap: Any, min_distance: int = 8, threshold: float = 0.0, max_peaks: int = 20) -> list[ScoredPoint]:
    """Local maxima of a lesion map, scored by the map (see the module docstring for the exact rule).

    Args:
        heatmap: ``(H, W)`` map (numpy array or torch tensor).
        min_distance: half-width of the local-maximum window, and the distance within which weaker peaks are
            suppressed (pixels, at least 1).
        threshold: only peaks with a score strictly above it are returned (raw map units).
        max_peaks: at most this many peaks (at least 1).

    Returns:
        Points sorted by descending score.

    Raises:
        ValueError: on a bad map, ``min_distance < 1`` or ``max_peaks < 1``.
    """
    if int(min_distance) < 1:
        raise ValueError(f"min_distance must be at least 1 pixel, got {min_distance}")
    if int(max_peaks) < 1:
        raise ValueError(f"max_peaks must be at least 1, got {max_peaks}")
    heat = as_heatmap(heatmap)
    if float(heat.max()) <= float(heat.min()):
        return []
    size = 2 * int(min_distance) + 1
    local_max = ndimage.maximum_filter(heat, size=size, mode="constant", cval=-np.inf)
    ys, xs = _plateau_representatives(heat, heat == local_max)
    scores = heat[ys, xs].astype(np.float64)
    above = scores > threshold
    ys, xs, scores = ys[above], xs[above], scores[above]
    order = np.lexsort((xs, ys, -scores))
    ys, xs, scores = ys[order], xs[order], scores[order]
    peaks: list[ScoredPoint] = []
    limit = float(min_distance) ** 2
    while ys.size and len(peaks) < max_peaks:
        y, x, score = int(ys[0]), int(xs[0]), float(scores[0])
        peaks.append(ScoredPoint(x=float(x), y=float(y), score=score))
        far = (ys - y) ** 2 + (xs - x) ** 2 > limit
        ys, xs, scores = ys[far], xs[far], scores[far]
    return peaks


def map_peak(heatmap: Any) -> ScoredPoint | None:
    """The global maximum of a map (the point of the pointing game); on a flat top, its pixel nearest the
    plateau's centroid (of several plateaus at the maximum, the one whose chosen pixel comes first in raster order).

    Args:
        heatmap: ``(H, W)`` map (numpy array or torch tensor).

    Returns:
        The peak, or ``None`` for a constant map (no evidence anywhere).

    Raises:
        ValueError: on a bad map.
    """
    heat = as_heatmap(heatmap)
    top = float(heat.max())
    if top <= float(heat.min()):
        return None
    at_top = heat == np.float32(top)
    ys, xs = _plateau_representatives(heat, at_top)  # a global maximum has no higher shoulder
    first = int(np.lexsort((xs, ys))[0])
    return ScoredPoint(x=float(xs[first]), y=float(ys[first]), score=top)
