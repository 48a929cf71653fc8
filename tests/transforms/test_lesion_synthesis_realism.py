"""Realism properties of the lesion synthesizer: no mask-clipped discs, families mixed by pixel share, measures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.transforms import RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis import LESION_FAMILIES
from radlas_monai.transforms.lesion_synthesis.realism import disc_ring_contrast, family_pixel_shares, lesion_centres
from radlas_monai.transforms.lesion_synthesis.regions import LungFields


def _lungs(batch: int = 8, size: int = 128) -> torch.Tensor:
    lung = torch.zeros(batch, 1, size, size)
    lung[..., 16:112, 10:58] = 1
    lung[..., 16:112, 70:118] = 1
    return lung


def test_deep_sampling_respects_the_depth_and_falls_back_to_the_deepest_cells():
    fields = LungFields(_lungs(2), cell=2)
    u = np.random.RandomState(0).rand(400, 3)
    batch = np.zeros(400, dtype=np.int64)
    centres = fields.sample(batch, u, min_depth=np.full(400, 16.0))
    depth = fields.depth[0][(centres[:, 0] // 2).astype(int), (centres[:, 1] // 2).astype(int)]
    assert depth.min() >= 16.0 - 2.0  # on the coarse grid
    deepest = fields.sample(batch, u, min_depth=np.full(400, 1e6))
    depth = fields.depth[0][(deepest[:, 0] // 2).astype(int), (deepest[:, 1] // 2).astype(int)]
    assert depth.min() == fields.depth[0].max()


def _shallowest_nodule(lung: torch.Tensor) -> float:
    """Smallest ``centre depth / core radius`` over the synthetic nodules of a few batches (< 1: cut by the edge)."""
    synth = RandLesionSynthesis(prob=1.0, num_lesions=2, family_probs={"nodule": 1.0}, lung_dilation=0.0)
    synth.set_random_state(0)
    ratios = []
    for _ in range(4):
        out = synth(torch.full((8, 1, 128, 128), 0.3), lung_mask=lung, spacing=1.0)
        for b in range(8):
            for _, _, _, radius, depth in lesion_centres(out.mask[b, 0].numpy(), out.family[b, 0].numpy(), lung[b, 0]):
                ratios.append(depth / max(radius, 1.0))
    return min(ratios)


def test_nodules_are_not_clipped_into_half_discs_by_the_lung_edge(monkeypatch):
    # the mask is cut at the lung edge (lung_dilation=0), so a nodule placed too near it becomes a half-disc whose
    # centre sits less than one radius inside the lung
    lung = _lungs()
    assert _shallowest_nodule(lung) >= 1.0
    monkeypatch.setattr("radlas_monai.transforms.lesion_synthesis.array._CORE_DEPTH", 0.0)  # placement ignores depth
    assert _shallowest_nodule(lung) < 1.0


def test_default_family_mix_by_pixel_share_is_focal():
    # the mix the grounding loss sees: focal lesions dominate, border-hugging effusion + pneumothorax stay a minority
    lung = _lungs(16, 256)
    synth = RandLesionSynthesis(prob=1.0, num_lesions=(1, 3)).set_random_state(0)
    mass = dict.fromkeys(LESION_FAMILIES, 0.0)
    for _ in range(6):
        out = synth(torch.full((16, 1, 256, 256), 0.3), lung_mask=lung, spacing=1.4)
        total = float(out.mask.sum())
        for name, share in family_pixel_shares(out.mask.numpy(), out.family.numpy(), LESION_FAMILIES).items():
            mass[name] += share * total
    shares = {name: value / sum(mass.values()) for name, value in mass.items()}
    assert shares["nodule"] == max(shares.values())
    assert shares["nodule"] + shares["airspace_opacity"] + shares["foreign_patch"] >= 0.8, shares
    assert shares["effusion"] + shares["pneumothorax"] <= 0.2, shares


def test_disc_ring_contrast_by_hand():
    image = np.zeros((41, 41))
    yy, xx = np.mgrid[0:41, 0:41]
    image[np.hypot(yy - 20, xx - 20) <= 5] = 0.1  # disc of radius 5 at 0.1 on a 0 background
    assert disc_ring_contrast(image, 20, 20, 5.0) == pytest.approx(0.1)
    assert disc_ring_contrast(image + 0.5, 20, 20, 5.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="radius"):
        disc_ring_contrast(image, 20, 20, 0.0)


def test_family_pixel_shares_and_lesion_centres_by_hand():
    mask = np.zeros((20, 20))
    family = np.zeros((20, 20), dtype=np.int64)
    mask[2:6, 2:6], family[2:6, 2:6] = 1.0, 1  # 16 px nodule
    mask[10:18, 10:14], family[10:18, 10:14] = 0.5, 4  # 32 px at 0.5 effusion
    shares = family_pixel_shares(mask, family, LESION_FAMILIES)
    assert shares["nodule"] == pytest.approx(0.5) and shares["effusion"] == pytest.approx(0.5)
    lung = np.ones((20, 20))
    centres = lesion_centres(mask, family, lung, threshold=0.4)
    assert [c[0] for c in centres] == [1, 4]
    kind, row, col, radius, depth = centres[0]
    assert (row, col) == (3.5, 3.5) and radius == pytest.approx(np.sqrt(16 / np.pi)) and depth == pytest.approx(4.0)
