"""IoU, Dice and mean IoU of thresholded maps (radlas_monai.metrics.overlap)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.metrics.overlap import iou_dice, mean_iou, overlap_at_thresholds

HEAT = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
GT = np.array([[0, 0, 1, 1]], bool)


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        [[[1, 1, 0, 0]], [[0, 1, 1, 1]], (1 / 4, 2 / 5)],
        [[[0, 1, 1, 0]], [[0, 1, 1, 0]], (1.0, 1.0)],
        [[[0, 0, 0, 0]], [[0, 0, 0, 0]], (1.0, 1.0)],
        [[[1, 0, 0, 0]], [[0, 0, 0, 0]], (0.0, 0.0)],
    ],
)
def test_iou_dice(pred, gt, expected):
    assert iou_dice(np.array(pred), torch.tensor(gt)) == pytest.approx(expected)


def test_overlap_at_thresholds_hand_computed():
    # >= .1: pixels .25, .5, 1 (inter 2, union 3); >= .3: .5, 1 (= gt); >= .6: 1 only (inter 1, union 2)
    iou, dice = overlap_at_thresholds(HEAT * 4 + 2, GT, thresholds=(0.1, 0.3, 0.6))  # scale-free: normalised
    np.testing.assert_allclose(iou, [2 / 3, 1.0, 0.5])
    np.testing.assert_allclose(dice, [4 / 5, 1.0, 2 / 3])


def test_mean_iou_over_point_one_to_point_five():
    assert mean_iou(HEAT, GT) == pytest.approx((2 / 3 + 2 / 3 + 1 + 1 + 1) / 5)


def test_constant_map_predicts_nothing():
    iou, dice = overlap_at_thresholds(np.full((1, 4), 0.7), GT)
    assert not iou.any() and not dice.any()


@pytest.mark.parametrize(
    "heat, gt, kwargs, match",
    [
        [HEAT, np.zeros((1, 5)), {}, "differs"],
        [HEAT, np.zeros((1, 1, 4, 1)), {}, "\\(1, 1, 4, 1\\)"],
        [HEAT, GT, {"thresholds": (1.5,)}, "thresholds"],
    ],
)
def test_errors(heat, gt, kwargs, match):
    with pytest.raises(ValueError, match=match):
        overlap_at_thresholds(heat, gt, **kwargs)
