"""Image-level AUROC and the streaming pixel AUROC (radlas_monai.metrics.auroc)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from radlas_monai.metrics.auroc import PixelAUROC, auc_from_histograms, roc_auc, weighted_auc


@pytest.mark.parametrize(
    "pos, neg, pos_w, neg_w, expected",
    [
        [[0.9, 0.5], [0.5, 0.1], None, None, 3.5 / 4],  # one tie (0.5 vs 0.5) counts one half
        [[0.9, 0.5], [0.5, 0.1], [1, 3], None, (2 + 3 * 1.5) / 8],
        [[0.2], [0.3, 0.4], None, None, 0.0],
        [[], [0.3], None, None, math.nan],
    ],
)
def test_weighted_auc_hand_computed(pos, neg, pos_w, neg_w, expected):
    value = weighted_auc(pos, neg, pos_w, neg_w)
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_image_auroc_matches_monai(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(40), 1)  # many ties
    labels = (rng.random(40) < 0.4).astype(int)
    expected = compute_roc_auc(torch.tensor(scores), torch.tensor(labels))
    assert roc_auc(scores, labels) == pytest.approx(float(expected))


def test_integer_weights_equal_duplication():
    rng = np.random.default_rng(3)
    scores, labels, weights = rng.random(12), np.arange(12) % 3 == 0, rng.integers(0, 3, 12)
    assert roc_auc(scores, labels, weights) == pytest.approx(
        roc_auc(np.repeat(scores, weights), np.repeat(labels, weights))
    )


def test_auc_from_histograms():
    # positives in bins 2, 3; negatives in bins 0, 2: pairs 1, .5, 1, 1 -> 3.5 / 4
    assert auc_from_histograms([0, 0, 1, 1], [1, 0, 1, 0]) == pytest.approx(3.5 / 4)
    assert math.isnan(auc_from_histograms([0, 0], [1, 1]))


def _images(seed: int, n: int = 3, size: int = 12):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        region = np.zeros((size, size), bool)
        region[2:6, 3:8] = True
        yield np.clip(rng.random((size, size)) * 0.8 + 0.3 * region, 0, 1).astype(np.float32), region


def test_pixel_auroc_is_exact_to_bin_resolution():
    metric = PixelAUROC(n_bins=1000)
    heats, regions = [], []
    for heat, region in _images(0):
        metric(torch.tensor(heat), region)
        heats.append(heat.ravel())
        regions.append(region.ravel())
    exact = float(compute_roc_auc(torch.tensor(np.concatenate(heats)), torch.tensor(np.concatenate(regions) * 1)))
    assert 0.6 < exact < 1.0
    assert metric.aggregate() == pytest.approx(exact, abs=2e-3)
    assert metric.pos_hist.shape == metric.neg_hist.shape == (1000,)  # the whole state: two histograms
    assert metric.pos_hist.sum() == 3 * 20 and metric.neg_hist.sum() == 3 * (144 - 20)


def test_pixel_auroc_equals_exact_auroc_on_bin_centres():
    rng = np.random.default_rng(1)
    heat = ((rng.integers(0, 10, (8, 8)) + 0.5) / 10).astype(np.float32)
    region = rng.random((8, 8)) < 0.3
    metric = PixelAUROC(n_bins=10)
    metric.update(heat, region)
    assert metric.aggregate() == pytest.approx(roc_auc(heat.ravel(), region.ravel()))


def test_streaming_equals_one_shot_and_reset():
    one, parts = PixelAUROC(100), PixelAUROC(100)
    images = list(_images(2))
    for heat, region in images:
        parts(heat, region)
    one(np.concatenate([h for h, _ in images]), np.concatenate([r for _, r in images]))
    assert parts.aggregate() == pytest.approx(one.aggregate())
    parts.reset()
    assert math.isnan(parts.aggregate())


def test_out_of_range_values_warn_once(caplog):
    metric = PixelAUROC(10)
    with caplog.at_level(logging.WARNING, logger="radlas_monai.metrics.auroc"):
        metric(np.full((2, 2), 2.0), np.eye(2))
        metric(np.full((2, 2), -1.0), np.eye(2))
    assert sum("outside [0, 1]" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    "call, match",
    [
        [lambda: PixelAUROC(1), "n_bins"],
        [lambda: PixelAUROC(10).update(np.zeros((4, 4)), np.zeros((4, 5))), "\\(4, 5\\) differs"],
        [lambda: roc_auc([0.1, 0.2], [1]), "differs"],
        [lambda: auc_from_histograms([1, 2], [1, 2, 3]), "same length"],
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
