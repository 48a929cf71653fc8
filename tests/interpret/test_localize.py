"""Lesion map -> mask, boxes, marks, image score (radlas_monai.interpret.localize)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radlas_monai.data.rle import rle_decode
from radlas_monai.interpret.localize import Localization, localize


def _map() -> np.ndarray:
    heat = np.full((24, 32), 0.1, np.float32)
    heat[2:6, 3:9] = 0.9  # 24 px, strongest
    heat[14:20, 20:26] = 0.7  # 36 px
    heat[22, 1] = 0.8  # a 1-px speck
    return heat


def test_localize_boxes_mask_and_scores():
    loc = localize(_map(), method="fixed", value=0.5, min_area=4)
    assert isinstance(loc, Localization)
    assert [(b.box, b.area) for b in loc.boxes] == [([3, 2, 9, 6], 24), ([20, 14, 26, 20], 36)]
    assert [b.score for b in loc.boxes] == pytest.approx([0.9, 0.7])
    assert loc.mask.dtype == np.uint8 and loc.mask.sum() == 60 and loc.mask[22, 1] == 0  # speck dropped
    assert loc.image_score == pytest.approx(0.9)
    assert loc.heatmap_range == pytest.approx((0.1, 0.9))
    assert [(p.x, p.y) for p in loc.peaks][:1] == [(5.0, 3.0)]  # centre of the strongest flat top


def test_max_boxes_keeps_the_mask_consistent():
    loc = localize(_map(), method="fixed", value=0.5, min_area=1, max_boxes=1)
    assert [b.box for b in loc.boxes] == [[3, 2, 9, 6]]
    assert loc.mask.sum() == 24 and loc.mask[2:6, 3:9].all()


@pytest.mark.parametrize("method, value", [["otsu", None], ["percentile", 80.0], ["fixed", 0.5]])
def test_numpy_and_torch_agree(method, value):
    a = localize(_map(), method=method, value=value)
    b = localize(torch.tensor(_map())[None], method=method, value=value)
    assert a.to_json() == b.to_json()
    np.testing.assert_array_equal(a.mask, b.mask)


def test_to_json_is_plain_and_round_trips_the_mask():
    loc = localize(_map(), method="fixed", value=0.5)
    data = json.loads(json.dumps(loc.to_json()))
    assert data["boxes"][0] == {"box": [3, 2, 9, 6], "score": pytest.approx(0.9), "area": 24}
    assert set(data["peaks"][0]) == {"x", "y", "score"}
    assert data["heatmap_range"] == pytest.approx([0.1, 0.9]) and data["method"] == "fixed"
    shape = data["mask_shape"]
    np.testing.assert_array_equal(rle_decode(data["mask_rle"], shape[0], shape[1]), loc.mask)
    assert "mask_rle" not in loc.to_json(include_mask=False)


def test_constant_map_localizes_nothing():
    loc = localize(np.full((8, 8), 0.3))
    assert loc.boxes == [] and loc.peaks == [] and not loc.mask.any() and loc.image_score == pytest.approx(0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [[{"max_boxes": -1}, "max_boxes"], [{"method": "kmeans"}, "unknown"], [{"min_area": 0}, "min_area"]],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        localize(_map(), **kwargs)
