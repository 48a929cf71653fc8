"""Connected components -> scored boxes, and boxes -> masks (radlas_monai.interpret.components)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radlas_monai.interpret.components import ScoredBox, boxes_to_mask, mask_to_boxes

MASK = np.array(
    [
        [1, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 1],
    ],
    np.uint8,
)


@pytest.mark.parametrize(
    "connectivity, expected_boxes",
    [
        [2, [[0, 0, 3, 3], [3, 4, 6, 5], [4, 1, 5, 2]]],  # diagonal pixel (2, 2) joins the top-left component
        [1, [[0, 0, 2, 2], [3, 4, 6, 5], [4, 1, 5, 2], [2, 2, 3, 3]]],  # ties: raster order
    ],
)
def test_boxes_without_heatmap_sorted_by_area(connectivity, expected_boxes):
    boxes = mask_to_boxes(MASK, connectivity=connectivity)
    assert [b.box for b in boxes] == expected_boxes
    assert all(b.score == 1.0 for b in boxes)


def test_scores_are_the_component_maximum_of_the_raw_map():
    heat = np.zeros(MASK.shape, np.float32)
    heat[4, 5], heat[1, 4], heat[0, 0] = 0.9, 0.5, 0.2
    heat[3, 3] = 5.0  # outside every component: must not leak into a score
    boxes = mask_to_boxes(torch.tensor(MASK), torch.tensor(heat))
    assert [(b.box, b.area) for b in boxes] == [([3, 4, 6, 5], 3), ([4, 1, 5, 2], 1), ([0, 0, 3, 3], 4)]
    assert [b.score for b in boxes] == pytest.approx([0.9, 0.5, 0.2])


def test_min_area_drops_small_components():
    assert [b.box for b in mask_to_boxes(MASK, min_area=3)] == [[0, 0, 3, 3], [3, 4, 6, 5]]
    assert mask_to_boxes(np.zeros((4, 4))) == []


def test_scored_box_json():
    box = ScoredBox(box=[1, 2, 3, 4], score=np.float32(0.5), area=np.int64(3))
    assert json.loads(json.dumps(box.to_json())) == {"box": [1, 2, 3, 4], "score": 0.5, "area": 3}


@pytest.mark.parametrize(
    "boxes, expected_pixels",
    [
        [[[1, 0, 3, 2]], [(0, 1), (0, 2), (1, 1), (1, 2)]],
        [[[0.5, 0.2, 2.2, 1.0]], []],  # pixel centres x in [0.5, 2.2) are 1, 2; y in [0.2, 1.0) holds none
        [[[0.5, 0.2, 2.2, 1.5]], [(1, 1), (1, 2)]],
        [[[-2, -2, 1, 1]], [(0, 0)]],
        [[], []],
    ],
)
def test_boxes_to_mask(boxes, expected_pixels):
    mask = boxes_to_mask(boxes, (3, 4))
    assert mask.shape == (3, 4)
    assert list(zip(*np.nonzero(mask))) == expected_pixels


def test_round_trip_boxes_mask_boxes():
    boxes = [[1, 1, 4, 3], [6, 2, 8, 7]]
    assert sorted(b.box for b in mask_to_boxes(boxes_to_mask(boxes, (8, 9)))) == boxes


@pytest.mark.parametrize(
    "call, match",
    [
        [lambda: mask_to_boxes(MASK, connectivity=3), "connectivity"],
        [lambda: mask_to_boxes(MASK, min_area=0), "min_area"],
        [lambda: mask_to_boxes(MASK, np.zeros((4, 4))), "differs"],
        [lambda: mask_to_boxes(np.zeros((2, 3, 4))), "\\(2, 3, 4\\)"],
        [lambda: boxes_to_mask([[0, 0, 1]], (3, 3)), "\\(1, 3\\)"],
    ],
)
def test_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
