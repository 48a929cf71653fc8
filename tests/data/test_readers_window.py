"""Tests of radlas_monai.data.readers.window: the intensity convention and window choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.data.readers.window import (
    apply_dicom_window,
    apply_lut,
    bit_depth_window,
    dicom_window_bounds,
    effective_bit_depth,
    luminance,
    normalize_to_unit,
    percentile_window,
    replace_nonfinite,
)

NORMALIZE_CASES = [
    # [values, low, high, expected]
    [[0, 2047.5, 4095, 5000, -3], 0, 4095, [0.0, 0.5, 1.0, 1.0, 0.0]],
    [[100.0, 150.0, 200.0], 100, 200, [0.0, 0.5, 1.0]],
    [[-1000, 0, 1000], -1000, 1000, [0.0, 0.5, 1.0]],
]


@pytest.mark.parametrize("values, low, high, expected", NORMALIZE_CASES)
def test_normalize_to_unit_numpy_and_torch(values, low, high, expected):
    out = normalize_to_unit(np.array(values), low, high)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)
    out_t = normalize_to_unit(torch.tensor(values, dtype=torch.float64), low, high)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("low, high", [(1, 1), (2, 1), (np.nan, 1), (0, np.inf)])
def test_normalize_to_unit_rejects_bad_window(low, high):
    with pytest.raises(ValueError, match="low < high"):
        normalize_to_unit(np.zeros(3), low, high)


def test_percentile_window():
    values = np.arange(1001, dtype=np.float64)
    assert percentile_window(values, (0.5, 99.5)) == pytest.approx((5.0, 995.0))
    assert percentile_window(values, (0, 100)) == (0.0, 1000.0)
    with_nan = np.concatenate([values, [np.nan, np.inf]])
    assert percentile_window(with_nan, (0, 100)) == (0.0, 1000.0)
    # a constant background with a few outliers: percentiles collapse, the full range is used
    sparse = np.zeros(10000)
    sparse[:3] = 7
    assert percentile_window(sparse) == (0.0, 7.0)
    with pytest.raises(ValueError, match="constant"):
        percentile_window(np.full(10, 3.0))
    with pytest.raises(ValueError, match="percentiles"):
        percentile_window(values, (50, 10))


@pytest.mark.parametrize(
    "max_value, bits", [[0, 8], [255, 8], [256, 10], [1023, 10], [4095, 12], [4096, 14], [65535, 16]]
)
def test_effective_bit_depth(max_value, bits):
    assert effective_bit_depth(max_value) == bits
    assert bit_depth_window(bits) == (0.0, float(2**bits - 1))


@pytest.mark.parametrize(
    "center, width, function, expected",
    [
        [2048, 4096, "LINEAR", (0.0, 4095.0)],  # PS3.3 C.11.2.1.2.1: c - 0.5 -/+ (w - 1) / 2
        [40, 400, "LINEAR_EXACT", (-160.0, 240.0)],
        [40, 400, "SIGMOID", (-160.0, 240.0)],
        [40, 400, None, (-160.0, 239.0)],
    ],
)
def test_dicom_window_bounds(center, width, function, expected):
    assert dicom_window_bounds(center, width, function) == pytest.approx(expected)


@pytest.mark.parametrize(
    "center, width, function", [[0, 1, "LINEAR"], [0, 0, "LINEAR_EXACT"], [np.nan, 5, "LINEAR"], [0, 5, "GAMMA"]]
)
def test_dicom_window_bounds_rejects(center, width, function):
    with pytest.raises(ValueError):
        dicom_window_bounds(center, width, function)


def test_apply_dicom_window_linear_and_sigmoid():
    values = np.array([-1000.0, 40.0, 1000.0])
    np.testing.assert_allclose(apply_dicom_window(values, 40, 400, "SIGMOID"), [0.0, 0.5, 1.0], atol=1e-4)
    linear = apply_dicom_window(np.array([-160.0, 39.5, 239.0]), 40, 400)
    np.testing.assert_allclose(linear, [0.0, 0.5, 1.0], atol=1e-6)


def test_apply_lut_clamps_outside_the_mapped_range():
    lut = np.array([10, 20, 30, 40])
    out = apply_lut(np.array([[-5, 100, 101], [103, 104, 500]]), (4, 100, 16), lut)
    np.testing.assert_array_equal(out, [[10, 10, 20], [40, 40, 40]])
    with pytest.raises(ValueError, match="declares 8"):
        apply_lut(np.zeros(2), (8, 0, 16), lut)


def test_replace_nonfinite():
    values = np.array([[np.nan, 2.0], [np.inf, -np.inf], [5.0, 3.0]])
    out, count = replace_nonfinite(values)
    assert count == 3 and np.isnan(values[0, 0])  # input untouched
    np.testing.assert_array_equal(out, [[2.0, 2.0], [2.0, 2.0], [5.0, 3.0]])
    ints = np.array([1, 2])
    assert replace_nonfinite(ints)[0] is ints
    with pytest.raises(ValueError, match="no finite"):
        replace_nonfinite(np.full(3, np.nan))


def test_luminance_bt601():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]]], dtype=np.uint8)
    np.testing.assert_allclose(luminance(rgb), [[76.245, 149.685, 29.07, 10.0]], atol=1e-9)


@pytest.mark.parametrize("size", [2, 7, 5000])
@pytest.mark.parametrize("low, high", [(0, 3), (-1024, 3071), (0, 65535)])
def test_integer_percentile_window_equals_numpy(size, low, high):
    """Integer data takes a counting path; it must give numpy's (linear) percentiles exactly."""
    values = np.random.default_rng(size).integers(low, high + 1, size)
    values[0], values[1] = low, high
    for percentiles in [(0.5, 99.5), (0, 100), (12.5, 60.0)]:
        expected = tuple(np.percentile(values.astype(np.float64), percentiles))
        if expected[0] == expected[1]:
            expected = (float(values.min()), float(values.max()))
        assert percentile_window(values, percentiles) == pytest.approx(expected, abs=1e-9)
