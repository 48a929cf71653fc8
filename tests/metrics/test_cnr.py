"""Contrast-to-noise ratio (radlas_monai.metrics.cnr)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radlas_monai.metrics.cnr import contrast_to_noise_ratio

HEAT = np.array([[1.0, 1.0, 0.0, 0.5], [0.0, 0.5, 0.0, 0.5]], np.float32)
REGION = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)


@pytest.mark.parametrize(
    "heat, region, background, expected",
    [
        [HEAT, REGION, None, 3.0],  # in: mean 1; out: 0, .5, 0, .5, 0, .5 -> mean .25, std .25
        [HEAT * 10 - 3, REGION, None, 3.0],  # invariant to the map's scale (normalised first)
        [HEAT, REGION, [[0, 0, 1, 1], [0, 0, 1, 0]], 2.5 * math.sqrt(2)],  # out: 0, .5, 0 -> (1 - 1/6) / sqrt(1/18)
    ],
)
def test_cnr_hand_computed(heat, region, background, expected):
    value = contrast_to_noise_ratio(heat, torch.tensor(region), None if background is None else np.array(background))
    assert value == pytest.approx(expected)


@pytest.mark.parametrize(
    "heat, region",
    [
        [HEAT, np.zeros((2, 4), bool)],  # no lesion pixels
        [np.array([[1.0, 0.0, 0.0]]), np.array([[1, 0, 0]])],  # flat background
        [np.full((2, 2), 0.3), np.array([[1, 0], [0, 0]])],  # constant map
    ],
)
def test_undefined_cnr_is_nan(heat, region):
    assert math.isnan(contrast_to_noise_ratio(heat, region))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="\\(2, 3\\) differs"):
        contrast_to_noise_ratio(HEAT, np.zeros((2, 3)))
