"""Box IoU / IoBB and ChestX-ray8 box accuracy (radlas_monai.metrics.box_accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

from radlas_monai.metrics.box_accuracy import best_box_overlaps, box_accuracy, box_iobb, box_iou


@pytest.mark.parametrize(
    "gt, pred, iou, iobb",
    [
        [[0, 0, 2, 2], [1, 1, 3, 3], 1 / 7, 1 / 4],
        [[0, 0, 4, 4], [1, 1, 3, 3], 4 / 16, 1.0],  # prediction inside the ground truth: IoBB 1
        [[1, 1, 3, 3], [0, 0, 4, 4], 4 / 16, 4 / 16],
        [[0, 0, 2, 2], [2, 0, 4, 2], 0.0, 0.0],  # touching edges do not overlap (x1 exclusive)
        [[0, 0, 2, 2], [0, 0, 2, 2], 1.0, 1.0],
    ],
)
def test_pairwise_overlaps(gt, pred, iou, iobb):
    assert box_iou([gt], [pred])[0, 0] == pytest.approx(iou)
    assert box_iobb([gt], [pred])[0, 0] == pytest.approx(iobb)


def test_best_overlaps_take_the_best_prediction_per_ground_truth():
    gt = [[0, 0, 2, 2], [10, 10, 14, 14]]
    pred = [[1, 1, 3, 3], [0, 0, 2, 2], [11, 11, 12, 12]]
    iou, iobb = best_box_overlaps(gt, pred)
    np.testing.assert_allclose(iou, [1.0, 1 / 16])
    np.testing.assert_allclose(iobb, [1.0, 1.0])
    none_iou, none_iobb = best_box_overlaps(gt, np.zeros((0, 4)))
    assert none_iou.tolist() == [0.0, 0.0] and none_iobb.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "best, weights, expected",
    [
        [[0.05, 0.5, 0.9], None, {0.1: 2 / 3, 0.25: 2 / 3, 0.5: 1 / 3, 0.75: 1 / 3, 0.9: 0.0}],  # strict ">"
        [[0.05, 0.5, 0.9], [2, 0, 1], {0.1: 1 / 3, 0.25: 1 / 3, 0.5: 1 / 3, 0.75: 1 / 3, 0.9: 0.0}],
    ],
)
def test_box_accuracy(best, weights, expected):
    assert box_accuracy(best, weights=weights) == pytest.approx(expected)


def test_no_boxes_gives_nan_and_bad_shapes_raise():
    assert np.isnan(box_accuracy([])[0.5])
    with pytest.raises(ValueError, match="\\(1, 3\\)"):
        box_iou([[0, 0, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="weights shape"):
        box_accuracy([0.5], weights=[1, 2])
