"""Datalist item -> lesions, acceptance regions and pixel region (radlas_monai.metrics.annotation)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from radlas_monai.metrics.annotation import UNSPECIFIED_FINDING, LesionAnnotation

JSRT_LIKE = {"findings": ["Nodule"], "centers": [[4.0, 3.0]], "radii": [1.0], "boxes": [[3.0, 2.0, 5.0, 4.0]]}


def test_centres_make_circular_lesions():
    ann = LesionAnnotation.from_item(JSRT_LIKE, (8, 10))
    assert ann.findings == ("Nodule",) and len(ann.lesions) == 1 and not ann.is_normal
    assert ann.lesions[0].finding == "Nodule" and ann.lesions[0].radius == 1.0
    region = ann.region_mask()  # the 5-pixel digital disc of radius 1 around (x=4, y=3)
    assert sorted(zip(*np.nonzero(region))) == [(2, 4), (3, 3), (3, 4), (3, 5), (4, 4)]
    np.testing.assert_allclose(ann.gt_boxes(), [[3, 2, 5, 4]])
    # acceptance = the circle, not the (larger) box: (5, 2) is in the box's corner but 1.41 px from the centre
    np.testing.assert_array_equal(ann.hits([4, 5, 5], [3, 3, 2]), [[True], [True], [False]])


@pytest.mark.parametrize(
    "item, expected_findings",
    [
        [{"boxes": [[0, 0, 2, 2], [4, 4, 6, 6]], "box_findings": ["Mass", "Nodule"]}, ["Mass", "Nodule"]],
        [{"findings": ["Effusion"], "boxes": [[0, 0, 2, 2]]}, ["Effusion"]],
        [{"findings": ["Mass", "Nodule"], "boxes": [[0, 0, 2, 2]]}, [UNSPECIFIED_FINDING]],
    ],
)
def test_lesion_findings(item, expected_findings):
    ann = LesionAnnotation.from_item(item, (8, 8))
    assert ann.lesion_findings() == expected_findings
    assert ann.region_mask().sum() == 4 * len(expected_findings)


@pytest.mark.parametrize(
    "point, tolerance, expected",
    [
        [(1, 1), 0.0, True],
        [(3, 1), 0.0, False],  # x1 is exclusive
        [(5, 1), 1.0, False],  # 2 px right of the box edge x = 3
        [(5, 1), 2.0, True],
        [(5, 5), 2.0, False],  # 2.83 px from the corner (3, 3)
    ],
)
def test_box_acceptance_with_tolerance(point, tolerance, expected):
    ann = LesionAnnotation.from_item({"findings": ["Mass"], "boxes": [[0, 0, 3, 3]]}, (8, 8))
    assert ann.hits([point[0]], [point[1]], tolerance=tolerance)[0, 0] == expected


def test_mask_only_items_make_one_lesion_per_component(tmp_path):
    mask = np.zeros((6, 8), np.uint8)
    mask[0:2, 0:2] = 255
    mask[4, 5:8] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    ann = LesionAnnotation.from_item({"findings": ["Pneumothorax"], "mask": "m.png"}, (6, 8), base_dir=tmp_path)
    assert ann.lesion_findings() == ["Pneumothorax", "Pneumothorax"]
    np.testing.assert_array_equal(ann.region_mask(), mask > 0)
    np.testing.assert_allclose(ann.gt_boxes(), [[0, 0, 2, 2], [5, 4, 8, 5]])
    np.testing.assert_array_equal(ann.hits([1, 6, 3], [1, 4, 3]), [[True, False], [False, True], [False, False]])
    assert ann.hits([4], [3], tolerance=1.5)[0].tolist() == [False, True]  # (4, 3) is 1.41 px from pixel (5, 4)
    assert ann.hits([4], [3], tolerance=1.0)[0].tolist() == [False, False]


def test_mask_overrides_the_circles_for_the_pixel_region():
    mask = np.zeros((8, 10), bool)
    mask[3, 4] = True
    ann = LesionAnnotation.from_item({**JSRT_LIKE, "mask": mask}, (8, 10))
    assert ann.region_mask().sum() == 1 and len(ann.lesions) == 1


def test_normal_item():
    ann = LesionAnnotation.from_item({"findings": [], "image": "x.png"}, (4, 4))
    assert ann.is_normal and not ann.has_localization and ann.hits([1], [1]).shape == (1, 0)


@pytest.mark.parametrize(
    "item, shape, match",
    [
        [{"centers": [[1, 1]]}, (4, 4), "1 centers but 0 radii"],
        [{"centers": [[1, 1]], "radii": [1], "boxes": [[0, 0, 1, 1], [1, 1, 2, 2]]}, (4, 4), "pair up"],
        [{"boxes": [[0, 0, 1]]}, (4, 4), "4-element"],
        [{"boxes": [[0, 0, 1, 1]], "box_findings": ["a", "b"]}, (4, 4), "2 box_findings for 1"],
        [{"mask": np.zeros((3, 3))}, (4, 4), "\\(3, 3\\) differs"],
        [{}, (4, 4, 1), "expected shape"],
    ],
)
def test_malformed_items_raise(item, shape, match):
    with pytest.raises(ValueError, match=match):
        LesionAnnotation.from_item(item, shape)
