"""Classification metrics: hand-written references for AUROC, ROC points, thresholds, F1, ECE, and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from radlas_monai.metrics.classification import (
    MeanROCAUCMetric,
    as_one_hot,
    binary_metrics,
    choose_threshold,
    classification_report,
    expected_calibration_error,
    roc_auc_per_class,
    roc_curve,
    write_roc_plot,
)

SCORES = [0.1, 0.4, 0.35, 0.8]
LABELS = [0, 0, 1, 1]


def test_roc_curve_points_by_hand():
    fpr, tpr, thresholds = roc_curve(SCORES, LABELS)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    fpr, tpr, _ = roc_curve([0.5, 0.5, 0.2], [1, 0, 0])  # tied scores form one point
    np.testing.assert_allclose(fpr, [0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1, 1])
    with pytest.raises(ValueError, match="1-D"):
        roc_curve([[0.1]], [[1]])


def test_auroc_per_class_uses_monai_and_marks_undefined_classes():
    scores = np.stack([SCORES, [0.2, 0.3, 0.4, 0.5]], axis=1)
    labels = np.stack([LABELS, [0, 0, 0, 0]], axis=1)
    aucs = roc_auc_per_class(scores, labels)
    assert aucs[0] == pytest.approx(0.75) and math.isnan(aucs[1])
    # multi-class indices are one-vs-rest: class 1 is the positive of rows 2 and 3
    np.testing.assert_allclose(roc_auc_per_class(np.c_[1 - np.array(SCORES), SCORES], [0, 0, 1, 1]), [0.75, 0.75])


def test_mean_rocauc_metric_accumulates_and_skips_undefined_classes():
    metric = MeanROCAUCMetric()
    scores = torch.tensor([SCORES, [0.2, 0.3, 0.4, 0.5], [0.9, 0.1, 0.8, 0.2]]).T
    labels = torch.tensor([LABELS, [0, 0, 0, 0], [1, 0, 1, 0]]).T.float()
    metric(scores[:2], labels[:2])
    metric(scores[2:], labels[2:])
    assert metric.aggregate() == pytest.approx((0.75 + 1.0) / 2)
    empty = MeanROCAUCMetric()
    empty(scores, torch.zeros_like(labels))
    assert math.isnan(empty.aggregate())


@pytest.mark.parametrize(
    "method, expected",
    [["youden", 0.8], ["f1", 0.35]],  # Youden ties (J = 0.5 at 0.8 and 0.35) go to the higher threshold
)
def test_choose_threshold(method, expected):
    assert choose_threshold(SCORES, LABELS, method) == pytest.approx(expected)
    assert choose_threshold(SCORES, [0, 0, 0, 0], method, default=0.3) == 0.3
    with pytest.raises(ValueError, match="threshold method"):
        choose_threshold(SCORES, LABELS, "accuracy")


def test_binary_metrics_by_hand():
    stats = binary_metrics(SCORES, LABELS, 0.35)
    assert (stats["tp"], stats["fp"], stats["tn"], stats["fn"]) == (2, 1, 1, 0)
    assert stats["sensitivity"] == 1.0 and stats["specificity"] == 0.5
    assert stats["precision"] == pytest.approx(2 / 3) and stats["f1"] == pytest.approx(0.8)
    assert math.isnan(binary_metrics(SCORES, [0, 0, 0, 0], 0.5)["sensitivity"])


@pytest.mark.parametrize(
    "scores, labels, multi_label, bins, expected",
    [
        [[[0.9], [0.9], [0.1], [0.1]], [[1], [0], [0], [0]], True, 10, (abs(1 - 1.8) + abs(0 - 0.2)) / 4],
        [[[0.7, 0.3], [0.6, 0.4]], [0, 1], False, 10, (0.3 + 0.6) / 2],
        [[[1.0], [0.0]], [[1], [0]], True, 15, 0.0],
    ],
)
def test_expected_calibration_error(scores, labels, multi_label, bins, expected):
    assert expected_calibration_error(scores, labels, multi_label, bins) == pytest.approx(expected)


def test_as_one_hot_validates():
    np.testing.assert_array_equal(as_one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="class indices"):
        as_one_hot([3], 3)
    with pytest.raises(ValueError, match="expected labels"):
        as_one_hot(np.zeros((2, 4)), 3)


def test_report_applies_validation_thresholds_to_test(tmp_path):
    val_scores = np.array([[0.2, 0.5], [0.6, 0.5], [0.7, 0.5], [0.1, 0.5]])
    val_labels = np.array([[0, 0], [1, 0], [1, 0], [0, 0]])  # class B undefined on validation
    test_scores = np.array([[0.65, 0.9], [0.3, 0.2], [0.55, 0.7], [0.8, 0.1]])
    test_labels = np.array([[1, 1], [0, 0], [0, 1], [1, 0]])
    report = classification_report(val_scores, val_labels, test_scores, test_labels, ["A", "B"])
    a, b = report["per_class"]["A"], report["per_class"]["B"]
    assert a["threshold"] == 0.6 and a["threshold_source"] == "validation"
    assert (a["sensitivity"], a["specificity"]) == (1.0, 1.0)  # 0.55 < 0.6: the negative is not called
    assert b["threshold"] == 0.5 and b["threshold_source"] == "default"
    assert a["auroc"] == 1.0 and b["auroc"] == 1.0 and report["mean"]["auroc"] == 1.0
    assert report["num_validation"] == 4 and report["num_test"] == 4
    json.dumps(report, allow_nan=False)  # plain JSON, nan written as null
    path = write_roc_plot(report["roc"], tmp_path / "roc.png", {"A": 1.0, "B": None})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_multiclass_accuracy_and_mismatch():
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    labels = np.array([0, 1, 2, 1])
    report = classification_report(scores, labels, scores, labels, ["x", "y", "z"], multi_label=False)
    assert report["accuracy"] == 0.75 and report["per_class"]["z"]["auroc"] == 1.0
    with pytest.raises(ValueError, match="class names"):
        classification_report(scores, labels, scores, labels, ["x", "y"], multi_label=False)
