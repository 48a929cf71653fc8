"""Lesion synthesis on real chest radiographs (JSRT, shared folder; skipped when it is absent).

The synthetic nodules should look like the real JSRT nodules to the simplest measure a reader uses, their contrast
against the surrounding lung: the median added contrast of synthetic nodules must lie within a factor 2 of the
median contrast of the real ones (measured 0.069 vs 0.065 on 512-px images at 0.7 mm).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from radlas_monai.transforms.lesion_synthesis import LESION_FAMILIES, RandLesionSynthesis

SHARED_JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"
SPACING_MM = 0.7  # JSRT's 0.175 mm pitch, downsampled 4x to 512 px

pytestmark = pytest.mark.skipif(
    not SHARED_JSRT.exists(), reason="the shared JSRT folder (../shared/data/jsrt_nodule) is absent"
)


def _rows() -> list[dict[str, str]]:
    with open(SHARED_JSRT / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0


def _contrast(image: np.ndarray, row: float, col: float, radius: float) -> float:
    """Mean of the central disc (half the radius) minus the mean of a ring at 1.2-1.8 radii."""
    reach = int(np.ceil(1.8 * radius)) + 1
    top, left = max(0, int(row) - reach), max(0, int(col) - reach)
    window = image[top : int(row) + reach + 1, left : int(col) + reach + 1]
    yy, xx = np.mgrid[top : top + window.shape[0], left : left + window.shape[1]]
    distance = np.hypot(yy - row, xx - col)
    ring = (distance > 1.2 * radius) & (distance <= 1.8 * radius)
    return float(window[distance <= 0.5 * radius].mean() - window[ring].mean())


def _healthy_batch(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [r for r in _rows() if r["label"] == "0"][:count]
    images = np.stack([_load(SHARED_JSRT / r["image"]) for r in rows])[:, None]
    masks = np.stack([_load(SHARED_JSRT / "lung_masks" / f"{r['study_id']}.png") > 0 for r in rows])[:, None]
    return torch.from_numpy(images), torch.from_numpy(masks)


def test_synthetic_nodule_contrast_matches_real_nodules() -> None:
    real = [
        _contrast(_load(SHARED_JSRT / r["image"]), float(r["cy"]), float(r["cx"]), float(r["radius"]))
        for r in _rows()
        if r["label"] == "1"
    ][:40]
    images, lungs = _healthy_batch(16)
    synth = RandLesionSynthesis(prob=1.0, num_lesions=1, family_probs={"nodule": 1.0})
    synth.set_random_state(0)
    out = synth(images, lung_mask=lungs, spacing=SPACING_MM)
    added = []
    for b in range(images.shape[0]):
        core = out.mask[b, 0].numpy() > 0.5
        rows, cols = np.nonzero(core)
        radius = np.sqrt(core.sum() / np.pi)
        before = _contrast(images[b, 0].numpy(), rows.mean(), cols.mean(), radius)
        added.append(_contrast(out.image[b, 0].numpy(), rows.mean(), cols.mean(), radius) - before)
    ratio = np.median(added) / np.median(real)
    assert 0.5 < ratio < 2.0, (np.median(added), np.median(real))


def test_all_families_on_real_images_stay_in_the_lungs() -> None:
    images, lungs = _healthy_batch(8)
    synth = RandLesionSynthesis(prob=1.0, num_lesions=3, lung_dilation=1.4)
    synth.set_random_state(1)
    out = synth(images, lung_mask=lungs, spacing=SPACING_MM)
    reach = 2 * round(1.4 / SPACING_MM)
    allowed = ndimage.binary_dilation(lungs.numpy(), np.ones((1, 1, 2 * reach + 1, 2 * reach + 1)))
    assert float(out.mask[torch.from_numpy(~allowed)].abs().max()) == 0.0
    assert torch.equal(out.image[out.mask == 0], images[out.mask == 0])
    assert 0.0 <= float(out.image.min()) and float(out.image.max()) <= 1.0
    assert len(torch.unique(out.family)) > 2 and int(out.family.max()) <= len(LESION_FAMILIES)
