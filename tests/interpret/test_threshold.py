"""Map normalisation and the fixed / Otsu / percentile thresholds of radlas_monai.interpret.threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.interpret.threshold import normalize_map, otsu_threshold, threshold_map

RAMP = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)  # normalised: 0, .2, .4, .6, .8, 1


def _brute_otsu(values: np.ndarray, bins: int = 256) -> float:
    """Reference: try every split of the histogram and keep the first best one (pure Python)."""
    index = [min(int(v * bins), bins - 1) for v in values.ravel().tolist()]
    best, best_k = -1.0, bins
    for k in range(1, bins):
        low = [(i + 0.5) / bins for i in index if i < k]
        high = [(i + 0.5) / bins for i in index if i >= k]
        if not low or not high:
            continue
        m0, m1 = sum(low) / len(low), sum(high) / len(high)
        between = len(low) * len(high) * (m0 - m1) ** 2
        if between > best + 1e-9:
            best, best_k = between, k
    return best_k / bins


def test_normalize_map_min_max():
    np.testing.assert_allclose(normalize_map(RAMP), [[0, 0.2, 0.4], [0.6, 0.8, 1.0]], atol=1e-6)
    assert normalize_map(torch.tensor(RAMP)[None]).shape == (2, 3)
    out = normalize_map(np.full((3, 3), 7.0))
    assert out.dtype == np.float32 and not out.any()


@pytest.mark.parametrize(
    "method, value, expected",
    [
        ["fixed", 0.6, [[0, 0, 0], [1, 1, 1]]],
        ["fixed", 0.5, [[0, 0, 0], [1, 1, 1]]],
        ["fixed", 0.0, [[1, 1, 1], [1, 1, 1]]],
        ["percentile", 50.0, [[0, 0, 0], [1, 1, 1]]],  # median of 0..1 in steps of .2 is .5
        ["percentile", 100.0, [[0, 0, 0], [0, 0, 1]]],
        ["otsu", None, [[0, 0, 0], [1, 1, 1]]],
    ],
)
def test_threshold_methods(method, value, expected):
    np.testing.assert_array_equal(threshold_map(RAMP, method, value), np.asarray(expected, bool))
    np.testing.assert_array_equal(threshold_map(torch.tensor(RAMP * 3 + 1), method, value), np.asarray(expected, bool))


def test_otsu_splits_a_bimodal_map():
    heat = np.full((6, 6), 0.1, np.float32)
    heat[1:3, 1:4] = 0.9
    heat[0, 0] = 0.12
    np.testing.assert_array_equal(threshold_map(heat, "otsu"), heat > 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_otsu_matches_brute_force(seed):
    values = np.random.default_rng(seed).beta(2, 5, size=200)
    assert otsu_threshold(values) == pytest.approx(_brute_otsu(values))


@pytest.mark.parametrize("method, value", [["fixed", 0.3], ["otsu", None], ["percentile", 90.0]])
def test_constant_map_gives_an_empty_mask(method, value):
    assert not threshold_map(np.full((4, 5), 0.7), method, value).any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"method": "mean"}, "unknown threshold method"],
        [{"method": "fixed"}, "value in \\[0, 1\\]"],
        [{"method": "fixed", "value": 1.5}, "value in \\[0, 1\\]"],
        [{"method": "percentile", "value": 101}, "\\[0, 100\\]"],
    ],
)
def test_threshold_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        threshold_map(RAMP, **kwargs)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), (0, 3), (1, 1, 2, 2)])
def test_bad_shapes_name_the_shape(shape):
    with pytest.raises(ValueError, match=str(shape).replace("(", "\\(").replace(")", "\\)")):
        normalize_map(np.zeros(shape))


def test_non_finite_values_are_rejected():
    heat = RAMP.copy()
    heat[0, 1] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        threshold_map(heat)
