"""Localization metrics of lesion maps and classification metrics of diagnoses.

- :mod:`~radlas_monai.metrics.classification`: per-class AUROC (MONAI ``ROCAUCMetric``), thresholds chosen on
  validation data, sensitivity / specificity / F1, expected calibration error, ROC plots

- :mod:`~radlas_monai.metrics.localization`: :class:`LocalizationMetrics`, every metric below accumulated per image
- :mod:`~radlas_monai.metrics.annotation`: :class:`LesionAnnotation` (datalist item -> lesions and regions)
- :mod:`~radlas_monai.metrics.pointing`: pointing game (Zhang et al. 2018)
- :mod:`~radlas_monai.metrics.overlap`: IoU, Dice, mean IoU over thresholds of the normalised map
- :mod:`~radlas_monai.metrics.box_accuracy`: box accuracy at T(IoU) / T(IoBB) (Wang et al. 2017)
- :mod:`~radlas_monai.metrics.cnr`: contrast-to-noise ratio
- :mod:`~radlas_monai.metrics.auroc`: streaming pixel AUROC, image AUROC
- :mod:`~radlas_monai.metrics.froc`: FROC sensitivities and JAFROC figure of merit (Chakraborty 2004, 2013)
- :mod:`~radlas_monai.metrics.bootstrap`: percentile bootstrap CIs over images or patients
- :mod:`~radlas_monai.metrics.report`: markdown tables, flat scalars, FROC plots

- :mod:`~radlas_monai.metrics.effective_rank`: effective rank (participation ratio) of feature vectors, a measure of
  representation collapse (:class:`EffectiveRankMetric` over a data set)
"""

from __future__ import annotations

from radlas_monai.metrics.annotation import UNSPECIFIED_FINDING, Lesion, LesionAnnotation
from radlas_monai.metrics.auroc import PixelAUROC, auc_from_histograms, roc_auc, weighted_auc
from radlas_monai.metrics.bootstrap import bootstrap_ci, bootstrap_weights, percentile_interval
from radlas_monai.metrics.box_accuracy import BOX_THRESHOLDS, best_box_overlaps, box_accuracy, box_iobb, box_iou
from radlas_monai.metrics.classification import (
    MeanROCAUCMetric,
    binary_metrics,
    choose_threshold,
    classification_report,
    expected_calibration_error,
    roc_auc_per_class,
    roc_curve,
    write_roc_plot,
)
from radlas_monai.metrics.cnr import contrast_to_noise_ratio
from radlas_monai.metrics.effective_rank import EffectiveRankMetric, effective_rank
from radlas_monai.metrics.froc import FROC_FP_RATES, froc_curve, froc_sensitivities, jafroc_fom, match_marks
from radlas_monai.metrics.localization import LocalizationMetrics
from radlas_monai.metrics.overlap import MEAN_IOU_THRESHOLDS, iou_dice, mean_iou, overlap_at_thresholds
from radlas_monai.metrics.pointing import lesion_pointing_hits, pointing_game
from radlas_monai.metrics.records import ImageRecord, RecordTable, metric_key
from radlas_monai.metrics.report import DEFAULT_TABLE_KEYS, markdown_table, plot_froc, scalar_metrics

__all__ = [
    "MeanROCAUCMetric",
    "binary_metrics",
    "choose_threshold",
    "classification_report",
    "expected_calibration_error",
    "roc_auc_per_class",
    "roc_curve",
    "write_roc_plot",
    "EffectiveRankMetric",
    "effective_rank",
    "BOX_THRESHOLDS",
    "DEFAULT_TABLE_KEYS",
    "FROC_FP_RATES",
    "MEAN_IOU_THRESHOLDS",
    "UNSPECIFIED_FINDING",
    "ImageRecord",
    "Lesion",
    "LesionAnnotation",
    "LocalizationMetrics",
    "PixelAUROC",
    "RecordTable",
    "auc_from_histograms",
    "best_box_overlaps",
    "bootstrap_ci",
    "bootstrap_weights",
    "box_accuracy",
    "box_iobb",
    "box_iou",
    "contrast_to_noise_ratio",
    "froc_curve",
    "froc_sensitivities",
    "iou_dice",
    "jafroc_fom",
    "lesion_pointing_hits",
    "markdown_table",
    "match_marks",
    "mean_iou",
    "metric_key",
    "overlap_at_thresholds",
    "percentile_interval",
    "plot_froc",
    "pointing_game",
    "roc_auc",
    "scalar_metrics",
    "weighted_auc",
]
