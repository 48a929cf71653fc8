"""Free-response ROC (FROC) and the JAFROC figure of merit for lesion marks.

Protocol (Chakraborty and Berbaum, "Observer studies involving detection and localization: modeling, analysis,
and validation", Med. Phys. 31(8), 2004; Chakraborty, "A brief history of free-response receiver operating
characteristic paradigm data analysis", Acad. Radiol. 20(7), 2013):

* **marks** are the scored local maxima of the map (:func:`~radlas_monai.interpret.peaks.find_peaks`);
* a mark is a **lesion localization (TP)** when it falls in a lesion's acceptance region (within its radius, else
  inside its box / mask component, see :mod:`~radlas_monai.metrics.annotation`); a lesion is rated by its
  *highest* such mark and counts once (``-inf`` when unmarked); further marks on an already-marked lesion are
  **ignored** (neither TP nor FP); a mark inside two overlapping lesions counts for both;
* every mark that falls in no lesion is a **non-lesion localization (FP)**, on every image, normal images included;
* the FROC curve sweeps a threshold ``t`` over the mark scores: sensitivity = fraction of lesions rated ``>= t``,
  FPs per image = FP marks scoring ``>= t`` / number of images. It starts at ``(0, 0)``; sensitivities at
  :data:`FROC_FP_RATES` are read by linear interpolation on it (as in the LUNA16 evaluation, Setio et al., Med.
  Image Anal. 42, 2017), and beyond its last point the curve stays at its final sensitivity;
* the **JAFROC-1 figure of merit** is the Wilcoxon statistic of lesion ratings against the highest FP rating of
  each image, over *all* images (normal and abnormal): ``FOM = sum_i sum_j psi(F_i, L_j) / (N_images N_lesions)``
  with ``psi(x, y) = 1`` if ``y > x``, ``0.5`` if ``y == x``, else 0, and ``-inf`` for an unmarked lesion or an
  image without FP marks (two ``-inf`` tie). The original JAFROC FOM uses only normal images as ``F_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from radlas_monai.metrics.annotation import LesionAnnotation
from radlas_monai.metrics.auroc import weighted_auc

__all__ = ["FROC_FP_RATES", "froc_curve", "froc_sensitivities", "jafroc_fom", "match_marks"]

#: False positives per image at which FROC sensitivity is reported.
FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _marks_array(marks: Any) -> np.ndarray:
    if len(marks) and hasattr(marks[0], "score"):
        return np.asarray([[m.x, m.y, m.score] for m in marks], dtype=np.float64)
    array = np.asarray(marks, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 3))
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"expected marks as ScoredPoints or an (N, 3) array of [x, y, score], got {array.shape}")
    return array


def match_marks(marks: Any, annotation: LesionAnnotation) -> tuple[np.ndarray, np.ndarray]:
    """Split an image's marks into lesion ratings and non-lesion (FP) ratings.

    Args:
        marks: the image's marks, a list of :class:`~radlas_monai.interpret.peaks.ScoredPoint` or ``(N, 3)``
            ``[x, y, score]``.
        annotation: the image's ground truth.

    Returns:
        ``(lesion_ratings (L,), fp_ratings (K,))``: each lesion's highest mark score (``-inf`` when unmarked), and
        the scores of marks that hit no lesion.

    Raises:
        ValueError: on malformed marks.
    """
    array = _marks_array(marks)
    n_lesions = len(annotation.lesions)
    if n_lesions == 0:
        return np.zeros(0), array[:, 2].copy()
    hits = annotation.hits(array[:, 0], array[:, 1])
    ratings = np.where(hits, array[:, 2:3], -np.inf).max(axis=0) if array.shape[0] else np.full(n_lesions, -np.inf)
    return ratings, array[~hits.any(axis=1), 2]


def froc_curve(
    lesion_ratings: Any,
    fp_ratings: Any,
    n_images: float,
    lesion_weights: Any = None,
    fp_weights: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operating points of the FROC curve.

    Args:
        lesion_ratings: ``(L,)`` rating of every lesion of every image (``-inf`` for unmarked lesions).
        fp_ratings: ``(K,)`` scores of all FP marks of all images.
        n_images: number of images (or their total weight), normal images included.
        lesion_weights: optional ``(L,)`` weights (bootstrap multiplicities of the lesions' images).
        fp_weights: optional ``(K,)`` weights.

    Returns:
        ``(fps_per_image, sensitivity, thresholds)``, starting at ``(0, 0, inf)``, one point per distinct score in
        descending order; at equal FP rates only the highest sensitivity is kept.

    Raises:
        ValueError: when ``n_images`` is not positive or weights do not match.
    """
    if not n_images > 0:
        raise ValueError(f"n_images must be positive, got {n_images}")
    lr, fr = np.asarray(lesion_ratings, dtype=np.float64).ravel(), np.asarray(fp_ratings, dtype=np.float64).ravel()
    lw = np.ones_like(lr) if lesion_weights is None else np.asarray(lesion_weights, dtype=np.float64).ravel()
    fw = np.ones_like(fr) if fp_weights is None else np.asarray(fp_weights, dtype=np.float64).ravel()
    if lw.shape != lr.shape or fw.shape != fr.shape:
        raise ValueError(f"weights {lw.shape}, {fw.shape} do not match ratings {lr.shape}, {fr.shape}")
    total_lesions = lw.sum()
    scores = np.concatenate([lr[np.isfinite(lr)], fr[np.isfinite(fr)]])
    thresholds = np.unique(scores)[::-1]

    def at_least(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(weights[order])])
        return cum[-1] - cum[np.searchsorted(values[order], thresholds, side="left")]

    sens = at_least(lr, lw) / total_lesions if total_lesions > 0 else np.full(thresholds.size, np.nan)
    fps = at_least(fr, fw) / float(n_images)
    fps, sens, thresholds = np.r_[0.0, fps], np.r_[0.0, sens], np.r_[np.inf, thresholds]
    last_of_run = np.r_[fps[1:] != fps[:-1], True]
    return fps[last_of_run], sens[last_of_run], thresholds[last_of_run]


def froc_sensitivities(fps: Any, sensitivity: Any, fp_rates: Sequence[float] = FROC_FP_RATES) -> np.ndarray:
    """Sensitivity at given FP-per-image rates, linearly interpolated on the FROC curve.

    Args:
        fps: ``(P,)`` ascending FPs per image of the operating points (from :func:`froc_curve`).
        sensitivity: ``(P,)`` sensitivities.
        fp_rates: the rates to read.

    Returns:
        ``(len(fp_rates),)`` sensitivities (the final sensitivity beyond the curve's last point).

    Raises:
        ValueError: on mismatched lengths or an empty curve.
    """
    x, y = np.asarray(fps, dtype=np.float64).ravel(), np.asarray(sensitivity, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"fps {x.shape} and sensitivity {y.shape} must be non-empty and of equal length")
    return np.interp(np.asarray(fp_rates, dtype=np.float64), x, y)


def jafroc_fom(
    lesion_ratings: Any, fp_image_ratings: Any, lesion_weights: Any = None, image_weights: Any = None
) -> float:
    """JAFROC figure of merit: Wilcoxon statistic of lesion ratings against per-image highest FP ratings.

    Pass the highest FP rating of *every* image for JAFROC-1, of normal images only for the original JAFROC.

    Args:
        lesion_ratings: ``(L,)`` lesion ratings (``-inf`` unmarked).
        fp_image_ratings: ``(N,)`` highest FP mark score per image (``-inf`` without FP marks).
        lesion_weights: optional ``(L,)`` weights.
        image_weights: optional ``(N,)`` weights.

    Returns:
        The FOM in ``[0, 1]``, NaN without lesions or images.
    """
    return weighted_auc(lesion_ratings, fp_image_ratings, lesion_weights, image_weights)
