"""Local maxima -> scored marks, and the map peak of the pointing game (radlas_monai.interpret.peaks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.interpret.peaks import ScoredPoint, find_peaks, map_peak


def _bump(shape, x, y, height, sigma=2.0):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return height * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


def _peaks(points):
    return [(p.x, p.y, round(p.score, 2)) for p in points]


@pytest.mark.parametrize(
    "bumps, kwargs, expected",
    [
        [[(5, 10, 1.0), (20, 4, 0.5)], {}, [(5.0, 10.0, 1.0), (20.0, 4.0, 0.5)]],
        [[(5, 10, 1.0), (20, 4, 0.5)], {"max_peaks": 1}, [(5.0, 10.0, 1.0)]],
        [[(5, 10, 1.0), (20, 4, 0.5)], {"threshold": 0.6}, [(5.0, 10.0, 1.0)]],
        [[(5, 10, 1.0), (9, 10, 0.8)], {"min_distance": 8}, [(5.0, 10.0, 1.0)]],  # 4 px apart: suppressed
        [[(5, 10, 1.0), (12, 10, 0.9)], {"min_distance": 3, "threshold": 0.5}, [(5.0, 10.0, 1.0), (12.0, 10.0, 0.9)]],
    ],
)
def test_find_peaks(bumps, kwargs, expected):
    heat = sum(_bump((16, 32), x, y, h, sigma=1.0) for x, y, h in bumps)
    assert _peaks(find_peaks(heat, **kwargs)) == expected
    assert _peaks(find_peaks(torch.tensor(heat, dtype=torch.float32)[None], **kwargs)) == expected


def test_plateau_is_one_peak_at_its_centre():
    heat = np.zeros((12, 12), np.float32)
    heat[2:5, 6:9] = 1.0  # flat 3 x 3 top
    assert _peaks(find_peaks(heat, min_distance=1)) == [(7.0, 3.0, 1.0)]
    ys, xs = np.mgrid[:15, :15]
    disk = ((xs - 7) ** 2 + (ys - 6) ** 2 <= 9).astype(np.float32)
    assert _peaks(find_peaks(disk, min_distance=2)) == [(7.0, 6.0, 1.0)]


def test_flat_background_is_not_a_peak():
    heat = np.full((20, 20), 0.2, np.float32) + _bump((20, 20), 10, 10, 0.8, sigma=1.0)
    heat[heat < 0.2 + 1e-3] = 0.2  # an exactly flat shoulder around the bump
    assert _peaks(find_peaks(heat, min_distance=3)) == [(10.0, 10.0, 1.0)]


def test_constant_map_has_no_peaks():
    assert find_peaks(np.full((8, 8), 0.5)) == []
    assert map_peak(np.zeros((8, 8))) is None


def test_map_peak_is_the_global_maximum():
    heat = _bump((16, 32), 5, 10, 0.7) + _bump((16, 32), 25, 3, 0.9)
    assert map_peak(heat) == ScoredPoint(x=25.0, y=3.0, score=pytest.approx(0.9, abs=1e-4))


@pytest.mark.parametrize("kwargs, match", [[{"min_distance": 0}, "min_distance"], [{"max_peaks": 0}, "max_peaks"]])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        find_peaks(np.zeros((4, 4)), **kwargs)


def test_bad_shape_names_the_shape():
    with pytest.raises(ValueError, match="\\(2, 4, 4\\)"):
        find_peaks(np.zeros((2, 4, 4)))
