"""Labelled synthetic findings: masks, boxes, centres, and the physics each finding is supposed to show."""

from __future__ import annotations

import numpy as np
import pytest

from radlas_monai.data.synthetic.anatomy import render_chest, sample_chest_anatomy
from radlas_monai.data.synthetic.findings import cardiothoracic_ratio, finding_from_mask, mask_box
from radlas_monai.data.synthetic.generator import render_radiograph
from radlas_monai.data.synthetic.pleura import render_pneumothorax
from radlas_monai.data.vocabulary import SYNTHETIC_FINDINGS

SIZE = 128


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


@pytest.mark.parametrize("name", SYNTHETIC_FINDINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_finding_renders_with_a_consistent_mask_box_and_centre(name, seed):
    sample = render_radiograph(seed, SIZE, findings=[name])
    assert [f.name for f in sample.findings] == [name]
    finding = sample.findings[0]
    assert finding.mask.shape == (SIZE, SIZE) and finding.mask.dtype == np.uint8
    assert set(np.unique(finding.mask)) <= {0, 1} and finding.mask.any()
    assert finding.box == _bbox(finding.mask)
    x0, y0, x1, y1 = finding.box
    assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    cx, cy = finding.center
    assert x0 <= cx < x1 and y0 <= cy < y1
    if name in ("Nodule", "Mass"):
        assert finding.radius is not None and finding.radius > 1
        area = finding.mask.sum()  # a lobulated disc of about that radius
        assert 0.5 < area / (np.pi * finding.radius**2) < 1.6
    else:
        assert finding.radius is None
        assert finding.mask[int(round(cy)), int(round(cx))] == 1
    if name != "Cardiomegaly":  # parenchymal and pleural findings live in the lung fields
        assert (finding.mask & sample.lung_mask).sum() >= 0.9 * finding.mask.sum()
    assert sample.label == [int(n == name) for n in SYNTHETIC_FINDINGS]


@pytest.mark.parametrize(
    "name, brighter",
    [("Nodule", True), ("Mass", True), ("Consolidation", True), ("Effusion", True), ("Pneumothorax", False)],
)
def test_finding_changes_the_matched_healthy_image_inside_its_mask(name, brighter):
    """Same seed without / with the finding: the anatomy is identical, the change sits in the mask."""
    healthy = render_radiograph(3, 256, findings=[])
    sick = render_radiograph(3, 256, findings=[name])
    mask = sick.findings[0].mask > 0
    diff = sick.image.astype(np.float64) - healthy.image
    inside = diff[mask].mean()
    assert (inside > 0.03) if brighter else (inside < -0.01), f"{name}: mean change inside the mask {inside:.3f}"
    np.testing.assert_array_equal(sick.lung_mask, healthy.lung_mask)
    # away from the finding (beyond the edge-enhancement halo) the image is unchanged up to noise
    from scipy.ndimage import binary_dilation

    far = ~binary_dilation(mask, iterations=24)
    assert np.abs(diff[far]).mean() < 0.01


def test_pneumothorax_rim_has_no_vessels_no_lung_and_a_pleural_line():
    anatomy = sample_chest_anatomy(np.random.default_rng(4))
    layers = render_chest(anatomy, 256, np.random.default_rng(4))
    vessels_before = layers.vessels.copy()
    finding = render_pneumothorax(layers, np.random.default_rng(0))
    rim = finding.mask > 0
    assert vessels_before[rim].sum() > 0, "the rim had lung markings before the collapse"
    assert layers.vessels[rim].max() < 1e-3 * vessels_before.max()
    assert (layers.lung_density[rim] == 0).all()
    # the pleural line runs along the inner border of the rim
    from scipy.ndimage import binary_dilation

    border = binary_dilation(rim, iterations=2) & ~rim & (layers.lung_mask > 0)
    assert layers.lesion[border].max() > 0.02
    # the rim is widest at the apex: its top lies at the top of that lung
    side = layers.lung_side[rim][0]
    assert np.nonzero(rim)[0].min() <= np.nonzero(layers.lung_side == side)[0].min() + 1


def test_cardiomegaly_increases_the_cardiothoracic_ratio():
    for seed in range(3):
        normal = render_radiograph(seed, 256, findings=[])
        big = render_radiograph(seed, 256, findings=["Cardiomegaly"])
        assert normal.cardiothoracic_ratio < 0.5 < big.cardiothoracic_ratio
        heart = big.findings[0].mask
        assert cardiothoracic_ratio(heart, big.lung_mask) == pytest.approx(big.cardiothoracic_ratio)


def test_effusion_blunts_the_costophrenic_angle():
    healthy = render_radiograph(6, 256, findings=[])
    sick = render_radiograph(6, 256, findings=["Effusion"])
    mask = sick.findings[0].mask > 0
    assert sick.image[mask].mean() > healthy.image[mask].mean() + 0.1
    # the fluid sits at the base: its lowest row is the lowest row of that lung
    side_cols = np.nonzero(mask)[1]
    lung = sick.lung_mask.copy()
    lung[:, : side_cols.min()] = 0
    lung[:, side_cols.max() + 1 :] = 0
    assert np.nonzero(mask)[0].max() >= np.nonzero(lung)[0].max() - 1


def test_several_findings_and_repeats():
    sample = render_radiograph(8, SIZE, findings=["Nodule", "Nodule", "Effusion"])
    assert sorted(sample.finding_names) == ["Effusion", "Nodule", "Nodule"]
    nodules = [f for f in sample.findings if f.name == "Nodule"]
    assert not (nodules[0].mask & nodules[1].mask).any(), "nodules are placed apart"
    assert sample.label == [1, 0, 0, 1, 0, 0]
    assert (sample.lesion_mask == np.maximum.reduce([f.mask for f in sample.findings])).all()


def test_mask_helpers():
    mask = np.zeros((10, 12), dtype=np.uint8)
    mask[2:5, 3:9] = 1
    assert mask_box(mask) == [3, 2, 9, 5]
    finding = finding_from_mask("Effusion", mask)
    assert finding.box == [3, 2, 9, 5] and finding.mask[int(finding.center[1]), int(finding.center[0])] == 1
    assert finding.equivalent_radius == pytest.approx(np.sqrt(18 / np.pi))
    with pytest.raises(ValueError, match="empty"):
        finding_from_mask("Nodule", np.zeros((4, 4)))


def test_cardiothoracic_ratio_reference():
    heart = np.zeros((20, 40), dtype=bool)
    heart[10:15, 12:24] = True  # 12 wide
    lungs = np.zeros((20, 40), dtype=bool)
    lungs[2:18, 5:15] = True
    lungs[4:18, 20:35] = True  # widest row spans columns 5..34 -> 30
    assert cardiothoracic_ratio(heart, lungs) == pytest.approx(12 / 30)
    with pytest.raises(ValueError):
        cardiothoracic_ratio(np.zeros_like(heart), lungs)
