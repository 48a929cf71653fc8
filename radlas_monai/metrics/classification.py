"""Diagnostic classification metrics: AUROC, operating points chosen on validation data, calibration, ROC plots.

Inputs are ``scores`` ``(N, K)`` (probabilities; for ``K = 1`` also ``(N,)``) and ``labels``: multi-hot ``(N, K)``
in ``{0, 1}``, or for multi-class data class indices ``(N,)`` (turned one-hot, one-vs-rest per class).

- AUROC per class through MONAI's :func:`monai.metrics.compute_roc_auc` (Hanley & McNeil, Radiology 1982); a class
  whose labels are all 0 or all 1 has no AUROC (``nan``) and is left out of the mean
  (:class:`MeanROCAUCMetric`, the accumulating ``ROCAUCMetric`` the bundles use as their key metric).
- Operating point per class (:func:`choose_threshold`), chosen on **validation** data and applied unchanged to the
  test data: ``"youden"`` maximises Youden's J = sensitivity + specificity - 1 (Youden, Cancer 1950), ``"f1"``
  maximises F1. A class without both positives and negatives in the validation data gets ``default_threshold``.
  A case is called positive when ``score >= threshold``.
- Sensitivity, specificity, precision and F1 at a threshold (:func:`binary_metrics`).
- Expected calibration error (:func:`expected_calibration_error`, Naeini et al., AAAI 2015; Guo et al., ICML 2017):
  equal-width confidence bins, ``ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|``. Multi-label: every
  (image, class) pair is one binary prediction with confidence ``p`` and outcome ``y``; multi-class: the top-label
  confidence and whether the top label is right.
- ROC curve points (:func:`roc_curve`) and a ROC plot PNG (:func:`write_roc_plot`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.metrics import ROCAUCMetric, compute_roc_auc

__all__ = [
    "THRESHOLD_METHODS",
    "MeanROCAUCMetric",
    "as_one_hot",
    "roc_auc_per_class",
    "roc_curve",
    "choose_threshold",
    "binary_metrics",
    "expected_calibration_error",
    "classification_report",
    "write_roc_plot",
]

logger = logging.getLogger(__name__)

THRESHOLD_METHODS = ("youden", "f1")


def _array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def as_one_hot(labels: Any, num_classes: int) -> np.ndarray:
    """Labels as a ``(N, K)`` 0/1 array: multi-hot ``(N, K)`` is kept, class indices ``(N,)`` are one-hot encoded.

    Raises:
        ValueError: wrong shape, or an index outside ``[0, K)``.
    """
    labels = _array(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        return (labels > 0.5).astype(np.float64)
    if labels.ndim == 1 and num_classes == 1:
        return (labels > 0.5).astype(np.float64)[:, None]
    if labels.ndim == 1:
        index = labels.astype(np.int64)
        if np.any(index != labels) or np.any(index < 0) or np.any(index >= num_classes):
            raise ValueError(f"class indices must be integers in [0, {num_classes}), got {np.unique(labels)[:10]}")
        return np.eye(num_classes, dtype=np.float64)[index]
    raise ValueError(f"expected labels (N, {num_classes}) or class indices (N,), got shape {labels.shape}")


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = _array(scores)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2:
        raise ValueError(f"expected scores (N, K), got shape {scores.shape}")
    onehot = as_one_hot(labels, scores.shape[1])
    if onehot.shape[0] != scores.shape[0]:
        raise ValueError(f"scores have {scores.shape[0]} rows but labels have {onehot.shape[0]}")
    return scores, onehot


def _defined(labels: np.ndarray) -> np.ndarray:
    """Per class: whether it has both positives and negatives (AUROC and thresholds are defined)."""
    positives = labels.sum(axis=0)
    return (positives > 0) & (positives < labels.shape[0])


def roc_auc_per_class(scores: Any, labels: Any) -> np.ndarray:
    """Per-class AUROC ``(K,)`` via :func:`monai.metrics.compute_roc_auc`; ``nan`` for a class lacking positives or
    negatives.

    Args:
        scores: ``(N, K)`` scores.
        labels: ``(N, K)`` multi-hot labels or ``(N,)`` class indices.
    """
    scores, labels = _scores_labels(scores, labels)
    result = np.full(scores.shape[1], np.nan)
    for k in np.flatnonzero(_defined(labels)):
        result[k] = float(compute_roc_auc(torch.as_tensor(scores[:, k]), torch.as_tensor(labels[:, k])))
    return result


class MeanROCAUCMetric(ROCAUCMetric):
    """MONAI ``ROCAUCMetric`` whose aggregate is the mean AUROC over the classes where it is defined.

    MONAI's ``"macro"`` average is ``nan`` as soon as one class has no positive in the data (common in small
    validation splits); this metric leaves such classes out and returns ``nan`` only when no class is defined.
    Use it as ``IgniteMetricHandler(metric_fn=MeanROCAUCMetric(), output_transform=...)`` with ``y_pred``
    ``(B, K)`` probabilities and ``y`` ``(B, K)`` one-hot/multi-hot labels.
    """

    def __init__(self) -> None:
        super().__init__(average="none")

    def aggregate(self, average: Any = None) -> float:  # noqa: ARG002 - always the defined-class mean
        """Mean AUROC over defined classes (``nan`` when none is defined)."""
        y_pred, y = self.get_buffer()
        if not isinstance(y_pred, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValueError("MeanROCAUCMetric has no data: call it on (y_pred, y) batches first")
        values = roc_auc_per_class(y_pred, y if y.ndim == 2 else y.reshape(-1))
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of one binary problem (vectorised).

    Args:
        scores: ``(N,)`` scores.
        labels: ``(N,)`` 0/1 labels.

    Returns:
        ``(fpr, tpr, thresholds)``: one point per distinct score, from ``(0, 0)`` at threshold ``+inf`` down to
        ``(1, 1)``; a case is positive when ``score >= threshold``. ``fpr`` (``tpr``) is all ``nan`` without
        negatives (positives).

    Raises:
        ValueError: on shapes that differ or are not 1-D.
    """
    scores, labels = _array(scores), _array(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"expected 1-D scores and labels of one length, got {scores.shape} and {labels.shape}")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order] > 0.5
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], dtype=np.int64)
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    positives, negatives = y.sum(), (~y).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0.0, tp / positives] if positives else np.full(tp.size + 1, np.nan)
        fpr = np.r_[0.0, fp / negatives] if negatives else np.full(fp.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def binary_metrics(scores: Any, labels: Any, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, precision and F1 of ``score >= threshold`` (``nan`` where undefined).

    Args:
        scores: ``(N,)`` scores.
        labels: ``(N,)`` 0/1 labels.
        threshold: the operating point.

    Returns:
        ``{"sensitivity", "specificity", "precision", "f1", "tp", "fp", "tn", "fn"}``.
    """
    scores, labels = _array(scores).reshape(-1), _array(labels).reshape(-1) > 0.5
    called = scores >= threshold
    tp, fp = int(np.sum(called & labels)), int(np.sum(called & ~labels))
    fn, tn = int(np.sum(~called & labels)), int(np.sum(~called & ~labels))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def choose_threshold(scores: Any, labels: Any, method: str = "youden", default: float = 0.5) -> float:
    """The operating point of one class, chosen on validation data.

    Args:
        scores: ``(N,)`` validation scores.
        labels: ``(N,)`` validation 0/1 labels.
        method: ``"youden"`` (max sensitivity + specificity - 1) or ``"f1"`` (max F1); ties go to the higher
            threshold.
        default: returned when the labels lack positives or negatives.

    Returns:
        The threshold (a score value; positive means ``score >= threshold``).

    Raises:
        ValueError: unknown ``method``.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"threshold method must be one of {THRESHOLD_METHODS}, got {method!r}")
    fpr, tpr, thresholds = roc_curve(scores, labels)
    y = _array(labels) > 0.5
    if y.all() or not y.any():
        return float(default)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # drop the +inf point
    if method == "youden":
        objective = tpr - fpr
    else:
        positives, negatives = y.sum(), (~y).sum()
        tp, fp = tpr * positives, fpr * negatives
        objective = 2 * tp / (2 * tp + fp + (positives - tp))
    return float(thresholds[int(np.argmax(objective))])


def expected_calibration_error(scores: Any, labels: Any, multi_label: bool = True, num_bins: int = 15) -> float:
    """Expected calibration error with ``num_bins`` equal-width bins (see the module docstring).

    Args:
        scores: ``(N, K)`` probabilities.
        labels: ``(N, K)`` multi-hot labels or ``(N,)`` class indices.
        multi_label: per (image, class) binary calibration (True) or top-label calibration (False).
        num_bins: number of bins over ``[0, 1]``.

    Returns:
        ECE in ``[0, 1]`` (``nan`` for empty input).

    Raises:
        ValueError: ``num_bins < 1`` or ill-shaped input.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    scores, labels = _scores_labels(scores, labels)
    if scores.size == 0:
        return float("nan")
    if multi_label:
        confidence, outcome = scores.reshape(-1), labels.reshape(-1)
    else:
        top = scores.argmax(axis=1)
        confidence, outcome = scores.max(axis=1), labels[np.arange(len(top)), top]
    bins = np.clip((confidence * num_bins).astype(np.int64), 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    gaps = np.abs(np.bincount(bins, weights=outcome, minlength=num_bins) - np.bincount(bins, confidence, num_bins))
    return float(gaps.sum() / counts.sum())


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def classification_report(
    val_scores: Any,
    val_labels: Any,
    test_scores: Any,
    test_labels: Any,
    class_names: Sequence[str],
    multi_label: bool = True,
    threshold_method: str = "youden",
    default_threshold: float | None = None,
    num_bins: int = 15,
) -> dict[str, Any]:
    """Per-class and mean metrics on test data at operating points chosen on validation data.

    Args:
        val_scores: ``(Nv, K)`` validation probabilities (thresholds are chosen here).
        val_labels: validation labels.
        test_scores: ``(Nt, K)`` test probabilities (metrics are measured here).
        test_labels: test labels.
        class_names: the ``K`` class names.
        multi_label: see :func:`expected_calibration_error`.
        threshold_method: ``"youden"`` or ``"f1"``.
        default_threshold: threshold of a class undefined on validation; 0.5 (multi-label) or ``1/K``.
        num_bins: ECE bins.

    Returns:
        A JSON-ready dict: ``per_class`` (name -> auroc, threshold, threshold_source, sensitivity, specificity,
        precision, f1, positives, negatives), ``mean`` (auroc, sensitivity, specificity, f1 over the classes where
        they are defined), ``ece``, ``accuracy`` (multi-class only), ``threshold_method``, ``num_validation``,
        ``num_test``, ``roc`` (name -> ``{"fpr": [...], "tpr": [...]}`` on test data). ``nan`` is written as None.

    Raises:
        ValueError: mismatched shapes or class counts, or an unknown threshold method.
    """
    names = [str(n) for n in class_names]
    val_scores, val_labels = _scores_labels(val_scores, val_labels)
    test_scores, test_labels = _scores_labels(test_scores, test_labels)
    if not val_scores.shape[1] == test_scores.shape[1] == len(names):
        raise ValueError(f"{len(names)} class names but scores with {val_scores.shape[1]}/{test_scores.shape[1]}")
    default = default_threshold if default_threshold is not None else (0.5 if multi_label else 1.0 / len(names))
    aucs = roc_auc_per_class(test_scores, test_labels)
    val_defined = _defined(val_labels)
    per_class, roc = {}, {}
    for k, name in enumerate(names):
        threshold = choose_threshold(val_scores[:, k], val_labels[:, k], threshold_method, default)
        stats = binary_metrics(test_scores[:, k], test_labels[:, k], threshold)
        per_class[name] = {
            "auroc": float(aucs[k]),
            "threshold": threshold,
            "threshold_source": "validation" if val_defined[k] else "default",
            **{key: stats[key] for key in ("sensitivity", "specificity", "precision", "f1")},
            "positives": int(test_labels[:, k].sum()),
            "negatives": int(len(test_labels) - test_labels[:, k].sum()),
        }
        fpr, tpr, _ = roc_curve(test_scores[:, k], test_labels[:, k])
        roc[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    report: dict[str, Any] = {
        "class_names": names,
        "multi_label": bool(multi_label),
        "threshold_method": threshold_method,
        "num_validation": int(len(val_scores)),
        "num_test": int(len(test_scores)),
        "per_class": per_class,
        "mean": {
            key: _nanmean([per_class[n][key] for n in names]) for key in ("auroc", "sensitivity", "specificity", "f1")
        },
        "ece": expected_calibration_error(test_scores, test_labels, multi_label, num_bins),
        "roc": roc,
    }
    if not multi_label:
        report["accuracy"] = (
            float(np.mean(test_scores.argmax(1) == test_labels.argmax(1))) if len(test_scores) else None
        )
    return _json_ready(report)


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_roc_plot(
    roc: Mapping[str, Mapping[str, Sequence[float | None]]],
    path: str | os.PathLike,
    aurocs: Mapping[str, float | None] | None = None,
    title: str = "ROC (test)",
) -> Path:
    """Draw one ROC curve per class into a PNG.

    Args:
        roc: class name -> ``{"fpr": [...], "tpr": [...]}`` (as in :func:`classification_report`); classes whose
            curve is undefined (``None``/``nan`` values) are listed in the legend as "n/a" without a curve.
        path: the PNG to write (folder created).
        aurocs: class name -> AUROC for the legend.
        title: plot title.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched

    figure = Figure(figsize=(5.5, 5.0), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    for name, curve in roc.items():
        fpr = np.array([np.nan if v is None else v for v in curve["fpr"]], dtype=np.float64)
        tpr = np.array([np.nan if v is None else v for v in curve["tpr"]], dtype=np.float64)
        auc = (aurocs or {}).get(name)
        label = f"{name} (AUROC {auc:.3f})" if auc is not None and math.isfinite(auc) else f"{name} (n/a)"
        if np.isfinite(fpr).all() and np.isfinite(tpr).all():
            axes.plot(fpr, tpr, linewidth=1.4, label=label)
        else:
            axes.plot([], [], linewidth=1.4, label=label)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("1 - specificity (false positive rate)")
    axes.set_ylabel("sensitivity (true positive rate)")
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
