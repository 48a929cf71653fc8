"""FROC curve, sensitivities at FP rates and JAFROC figures of merit (radlas_monai.metrics.froc)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radlas_monai.interpret.peaks import ScoredPoint
from radlas_monai.metrics.annotation import LesionAnnotation
from radlas_monai.metrics.froc import FROC_FP_RATES, froc_curve, froc_sensitivities, jafroc_fom, match_marks

SHAPE = (48, 48)
# image A: one lesion, marked twice (the weaker mark is ignored) plus an FP; image B: one lesion, missed, one FP;
# image C: normal, two FPs.
IMAGES = [
    ({"findings": ["Nodule"], "centers": [[10, 10]], "radii": [3]}, [(10, 10, 0.9), (11, 10, 0.8), (30, 30, 0.7)]),
    ({"findings": ["Nodule"], "centers": [[20, 20]], "radii": [3]}, [(40, 40, 0.6)]),
    ({"findings": []}, [(5, 5, 0.95), (25, 5, 0.3)]),
]


def _matched():
    lesions, fps, max_fp = [], [], []
    for item, marks in IMAGES:
        ratings, fp = match_marks(np.array(marks, float), LesionAnnotation.from_item(item, SHAPE))
        lesions.append(ratings)
        fps.append(fp)
        max_fp.append(fp.max() if fp.size else -np.inf)
    return np.concatenate(lesions), np.concatenate(fps), np.array(max_fp)


def test_match_marks_one_tp_per_lesion():
    ann = LesionAnnotation.from_item(IMAGES[0][0], SHAPE)
    marks = [ScoredPoint(x, y, s) for x, y, s in IMAGES[0][1]]
    ratings, fp = match_marks(marks, ann)
    assert ratings.tolist() == [0.9] and fp.tolist() == [0.7]  # the 0.8 mark on the same lesion is ignored
    ratings, fp = match_marks([], ann)
    assert ratings.tolist() == [-np.inf] and fp.size == 0


def test_froc_curve_hand_computed():
    lesions, fps, _ = _matched()
    assert lesions.tolist() == [0.9, -np.inf] and sorted(fps.tolist()) == [0.3, 0.6, 0.7, 0.95]
    x, y, t = froc_curve(lesions, fps, n_images=3)
    # thresholds .95 (0 TP, 1 FP), .9 (1 TP, 1 FP), .7 (2 FP), .6 (3 FP), .3 (4 FP); runs of equal FP keep the last
    np.testing.assert_allclose(x, [0, 1 / 3, 2 / 3, 1, 4 / 3])
    np.testing.assert_allclose(y, [0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(t, [np.inf, 0.9, 0.7, 0.6, 0.3])
    sens = froc_sensitivities(x, y, FROC_FP_RATES)
    np.testing.assert_allclose(sens, [0.1875, 0.375, 0.5, 0.5, 0.5, 0.5, 0.5])  # linear from (0, 0) to (1/3, .5)


def test_normal_images_add_false_positives():
    lesions, fps, _ = _matched()
    without_normal = fps[:2]  # the FP marks of images A and B only
    x, _, _ = froc_curve(lesions, without_normal, n_images=2)
    assert x[-1] == pytest.approx(1.0)  # 2 FPs on 2 images, versus 4 FPs on 3 images above


def test_jafroc_hand_computed():
    lesions, _, max_fp = _matched()
    # JAFROC-1: lesions (.9, -inf) vs highest FP per image (.7, .6, .95): .9 beats two of three, -inf none
    assert jafroc_fom(lesions, max_fp) == pytest.approx(2 / 6)
    assert jafroc_fom(lesions, max_fp[2:]) == pytest.approx(0.0)  # original JAFROC: the normal image's .95 wins
    # an image without FP marks (-inf) ties an unmarked lesion (-inf): one half
    assert jafroc_fom([-np.inf], [-np.inf]) == pytest.approx(0.5)
    assert jafroc_fom([0.4, 0.8], [0.5, -np.inf], lesion_weights=[1, 0]) == pytest.approx(0.5)
    assert math.isnan(jafroc_fom([], [0.5]))


def test_weights_equal_duplicated_images():
    lesions, fps, _ = _matched()
    x_w, y_w, _ = froc_curve(lesions, fps, 6, lesion_weights=[2, 2], fp_weights=[2, 2, 2, 2])
    x, y, _ = froc_curve(np.repeat(lesions, 2), np.repeat(fps, 2), 6)
    np.testing.assert_allclose(x_w, x)
    np.testing.assert_allclose(y_w, y)


@pytest.mark.parametrize(
    "call, match",
    [
        [lambda: froc_curve([0.5], [0.1], 0), "n_images"],
        [lambda: froc_curve([0.5], [0.1], 1, lesion_weights=[1, 1]), "weights"],
        [lambda: match_marks(np.zeros((2, 2)), LesionAnnotation.from_item({}, SHAPE)), "\\(2, 2\\)"],
        [lambda: froc_sensitivities([], []), "non-empty"],
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
