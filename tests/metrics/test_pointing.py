"""Pointing game (radlas_monai.metrics.pointing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.metrics.annotation import LesionAnnotation
from radlas_monai.metrics.pointing import lesion_pointing_hits, pointing_game

ITEM = {
    "boxes": [[2, 2, 6, 6], [10, 2, 14, 6], [2, 10, 4, 12]],
    "box_findings": ["Mass", "Nodule", "Nodule"],
}


def _map_with_peak(x: int, y: int, shape=(16, 16)) -> np.ndarray:
    heat = np.zeros(shape, np.float32)
    heat[y, x] = 1.0
    return heat


@pytest.mark.parametrize(
    "peak, tolerance, expected",
    [
        [(3, 3), 0.0, {"Mass": True, "Nodule": False}],
        [(12, 4), 0.0, {"Mass": False, "Nodule": True}],
        [(3, 11), 0.0, {"Mass": False, "Nodule": True}],  # either Nodule box counts
        [(8, 4), 0.0, {"Mass": False, "Nodule": False}],
        [(8, 4), 2.0, {"Mass": True, "Nodule": True}],  # 2 px from both boxes' edges (x = 6 and x = 10)
        [(8, 4), 1.5, {"Mass": False, "Nodule": False}],
    ],
)
def test_pointing_game_per_finding(peak, tolerance, expected):
    ann = LesionAnnotation.from_item(ITEM, (16, 16))
    assert pointing_game(_map_with_peak(*peak), ann, tolerance=tolerance) == expected
    assert pointing_game(torch.tensor(_map_with_peak(*peak)), ann, tolerance=tolerance) == expected


def test_radius_acceptance():
    ann = LesionAnnotation.from_item({"findings": ["Nodule"], "centers": [[8, 8]], "radii": [3]}, (16, 16))
    assert lesion_pointing_hits(_map_with_peak(11, 8), ann).tolist() == [True]  # on the circle
    assert lesion_pointing_hits(_map_with_peak(11, 10), ann).tolist() == [False]  # 3.6 px away
    assert lesion_pointing_hits(_map_with_peak(11, 10), ann, tolerance=1.0).tolist() == [True]


def test_constant_map_and_normal_image_miss():
    ann = LesionAnnotation.from_item(ITEM, (16, 16))
    assert lesion_pointing_hits(np.ones((16, 16)), ann).tolist() == [False, False, False]
    assert pointing_game(_map_with_peak(3, 3), LesionAnnotation.from_item({}, (16, 16))) == {}


@pytest.mark.parametrize("shape, match", [[(8, 16), "\\(8, 16\\) differs"], [(2, 16, 16), "\\(2, 16, 16\\)"]])
def test_shape_mismatch_raises(shape, match):
    with pytest.raises(ValueError, match=match):
        lesion_pointing_hits(np.zeros(shape), LesionAnnotation.from_item(ITEM, (16, 16)))
