"""Tests for radlas_monai.baselines.training_free: the LoG blob filter and the random lung point."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.baselines.training_free import LoGBlobMap, RandomLungPointMap
from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields


def test_log_blob_peaks_on_a_bright_blob_and_ignores_a_flat_image():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    image = 0.3 + 0.2 * torch.exp(-((yy - 40) ** 2 + (xx - 20) ** 2) / (2 * 4.0**2))
    out = LoGBlobMap(radii_px=(4.0, 6.0))(image[None, None])
    assert out.shape == (1, 1, 64, 64) and 0.0 <= float(out.min()) and float(out.max()) < 1.0
    row, col = divmod(int(out.argmax()), 64)
    assert abs(row - 40) <= 1 and abs(col - 20) <= 1
    assert float(LoGBlobMap()(torch.full((2, 1, 32, 32), 0.5)).max()) < 1e-4
    with pytest.raises(ValueError, match="positive"):
        LoGBlobMap(radii_px=())


def test_random_lung_point_lands_in_the_default_lung_fields_and_is_seeded():
    image = torch.rand(8, 1, 64, 64)
    first = RandomLungPointMap(seed=3)(image)
    again = RandomLungPointMap(seed=3)(image)
    assert torch.equal(first, again) and not torch.equal(first, RandomLungPointMap(seed=4)(image))
    lungs = default_lung_fields(64, 64, "cpu")[0, 0]
    for b in range(8):
        row, col = divmod(int(first[b, 0].argmax()), 64)
        assert bool(lungs[row, col]) and float(first[b].max()) == pytest.approx(1.0)
