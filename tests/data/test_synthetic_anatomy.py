"""The normal synthetic chest: geometry, lung masks, anatomy variation, intensities (vs JSRT when available)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import label

from radlas_monai.data.synthetic.anatomy import (
    ChestGeometry,
    enlarge_heart,
    render_chest,
    sample_chest_anatomy,
    smoothstep,
)
from radlas_monai.data.synthetic.findings import cardiothoracic_ratio
from radlas_monai.data.synthetic.generator import render_radiograph

JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"


def _normal(seed: int, size: int = 128):
    return render_radiograph(seed, size, findings=[])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_lung_mask_is_two_plausible_lungs(seed):
    sample = _normal(seed)
    labels, count = label(sample.lung_mask)
    assert count == 2, f"expected two lung fields, got {count}"
    sizes = np.bincount(labels.ravel())[1:]
    assert 0.5 < sizes.min() / sizes.max() <= 1.0  # the left lung is smaller (heart) but not tiny
    assert 0.18 < sample.lung_mask.mean() < 0.42  # JSRT: 0.30 on average
    # one lung on each side of the image, lungs darker than the rest of the body
    centres = [np.nonzero(labels == k)[1].mean() for k in (1, 2)]
    assert min(centres) < 64 < max(centres)
    body = sample.image > 0.05
    assert sample.image[sample.lung_mask > 0].mean() < sample.image[body & (sample.lung_mask == 0)].mean() - 0.1


def test_right_hemidiaphragm_higher_and_heart_left_biased():
    for seed in range(4):
        anatomy = replace(sample_chest_anatomy(np.random.default_rng(seed)), rotation=0.0)
        layers = render_chest(anatomy, 256, np.random.default_rng(0))
        dome_top = {}
        for side in (-1, 1):
            lung = layers.lung_side == side
            middle = int(np.median(np.nonzero(lung)[1]))
            dome_top[side] = np.nonzero(lung[:, middle])[0].max()
        assert dome_top[-1] < dome_top[1], "the right hemidiaphragm (image left) is the higher one"
        cols = np.nonzero(layers.geometry.heart_mask())[1]
        midline = anatomy.center_x * 256
        assert cols.mean() > midline, "the heart lies mostly on the patient's left (image right)"


@pytest.mark.parametrize("seed", [0, 5])
def test_normal_ctr_below_half_and_enlarged_heart_above(seed):
    anatomy = sample_chest_anatomy(np.random.default_rng(seed))
    normal = render_chest(anatomy, 256, np.random.default_rng(1))
    big = render_chest(enlarge_heart(anatomy, 0.62), 256, np.random.default_rng(1))
    ctr_normal = cardiothoracic_ratio(normal.geometry.heart_mask(), normal.lung_mask)
    ctr_big = cardiothoracic_ratio(big.geometry.heart_mask(), big.lung_mask)
    assert 0.33 < ctr_normal < 0.5
    assert ctr_big > 0.52 and ctr_big > ctr_normal + 0.08
    assert big.lung_mask.sum() < normal.lung_mask.sum()  # the heart takes lung field


def test_enlarge_heart_rejects_bad_ratio():
    anatomy = sample_chest_anatomy(np.random.default_rng(0))
    with pytest.raises(ValueError, match="cardiothoracic ratio"):
        enlarge_heart(anatomy, 1.2)


def test_anatomy_varies_per_seed():
    draws = [sample_chest_anatomy(np.random.default_rng(s)) for s in range(20)]
    for field in ("rotation", "scale", "dome_right", "habitus", "heart_width"):
        values = np.array([getattr(a, field) for a in draws])
        assert values.std() > 0, field
    # inspiration depth changes the lung height
    heights = [np.ptp(np.nonzero(_normal(s, 64).lung_mask.any(axis=1))[0]) for s in range(6)]
    assert len(set(heights)) > 2


@pytest.mark.parametrize("size", [64, 128, 256])
def test_geometry_scales_with_image_size(size):
    anatomy = sample_chest_anatomy(np.random.default_rng(3))
    geo = ChestGeometry(anatomy, size)
    assert geo.u.shape == (size, size) and geo.u.dtype == np.float32
    # to_pixel inverts the grid: the pixel of a grid point's anatomy coordinates is the point itself
    row, col = size // 3, size // 2
    x, y = geo.to_pixel(geo.u[row, col], geo.v[row, col])
    np.testing.assert_allclose([x, y], [col, row], atol=1e-3)
    rows, cols = geo.window(-0.1, 0.1, 0.4, 0.6)
    assert 0 <= rows.start < rows.stop <= size and 0 <= cols.start < cols.stop <= size


def test_lung_fraction_is_size_independent():
    fractions = [render_radiograph(2, s, findings=[]).lung_mask.mean() for s in (128, 256)]
    assert abs(fractions[0] - fractions[1]) < 0.01


def test_smoothstep():
    np.testing.assert_allclose(smoothstep(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])), [0.0, 0.0, 0.5, 1.0, 1.0])


@pytest.mark.skipif(not JSRT.exists(), reason="the JSRT data in ../shared is not available")
def test_intensity_distribution_close_to_real_radiographs():
    from PIL import Image

    real_lung, real_rest = [], []
    for path in sorted((JSRT / "images").glob("*.png"))[:20]:
        image = np.asarray(Image.open(path), dtype=np.float32) / 255.0
        lung = np.asarray(Image.open(JSRT / "lung_masks" / path.name)) > 0
        real_lung.append(image[lung].mean())
        real_rest.append(image[~lung].mean())
    synthetic = [_normal(seed, 256) for seed in range(8)]
    syn_lung = [s.image[s.lung_mask > 0].mean() for s in synthetic]
    syn_rest = [s.image[s.lung_mask == 0].mean() for s in synthetic]
    assert abs(np.mean(syn_lung) - np.mean(real_lung)) < 0.1
    assert abs(np.mean(syn_rest) - np.mean(real_rest)) < 0.12
