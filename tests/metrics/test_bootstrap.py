"""Percentile bootstrap over images or patients (radlas_monai.metrics.bootstrap)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radlas_monai.metrics.bootstrap import bootstrap_ci, bootstrap_weights, percentile_interval


def test_weights_are_seeded_multiplicities():
    w = bootstrap_weights(5, 200, seed=3)
    assert w.shape == (200, 5) and (w.sum(axis=1) == 5).all() and (w >= 0).all()
    np.testing.assert_array_equal(w, bootstrap_weights(5, 200, seed=3))
    assert not np.array_equal(w, bootstrap_weights(5, 200, seed=4))
    assert 0.9 < w.mean(axis=0).min() and w.mean(axis=0).max() < 1.1  # each image drawn once on average


def test_groups_resample_whole_patients():
    groups = ["a", "a", "b", "c", "c", "c"]
    w = bootstrap_weights(6, 100, seed=0, groups=groups)
    np.testing.assert_array_equal(w[:, 0], w[:, 1])
    np.testing.assert_array_equal(w[:, 3], w[:, 4])
    np.testing.assert_array_equal(w[:, 3], w[:, 5])
    per_group = w[:, [0, 2, 3]]
    assert (per_group.sum(axis=1) == 3).all()  # three patients drawn per resample


@pytest.mark.parametrize(
    "samples, confidence, expected",
    [
        [np.arange(101.0), 0.9, (5.0, 95.0)],
        [np.r_[np.arange(101.0), [np.nan] * 7], 0.9, (5.0, 95.0)],  # undefined resamples ignored
        [[np.nan, np.nan], 0.95, (math.nan, math.nan)],
    ],
)
def test_percentile_interval(samples, confidence, expected):
    low, high = percentile_interval(samples, confidence)
    for got, want in ((low, expected[0]), (high, expected[1])):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_bootstrap_ci_of_a_weighted_mean():
    values = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])

    def statistic(weights):
        return {"mean": float((weights * values).sum() / weights.sum()), "constant": 0.5}

    ci = bootstrap_ci(statistic, len(values), n_resamples=300, seed=1)
    assert ci["constant"] == (0.5, 0.5)
    low, high = ci["mean"]
    assert 0.0 <= low < values.mean() < high <= 1.0
    assert ci == bootstrap_ci(statistic, len(values), n_resamples=300, seed=1)


@pytest.mark.parametrize(
    "call, match",
    [
        [lambda: bootstrap_weights(0, 10), "n_items"],
        [lambda: bootstrap_weights(3, 10, groups=["a"]), "1 entries for 3"],
        [lambda: percentile_interval([1.0], 1.0), "confidence"],
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
