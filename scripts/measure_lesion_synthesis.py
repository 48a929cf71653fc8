"""Measure how realistic the pretraining lesion synthesizer is, against real JSRT nodules.

Usage::

    python scripts/measure_lesion_synthesis.py                          # ../shared/data/jsrt_nodule, defaults
    python scripts/measure_lesion_synthesis.py --repeats 16 --output synthesis_realism.json

Synthetic lesions are drawn into the JSRT *training half's* normal radiographs (512 px, 0.7 mm) with the bundle's
default :class:`~radlas_monai.transforms.RandLesionSynthesis`; real nodules are the training half's. Prints and writes:

* the share of the lesion mask's mass per family (the mix the grounding loss sees): sampled with the default mix,
  and expected, from each family's mean mask mass per lesion (each family drawn alone) times its probability (the
  sampled share is noisy: effusions are rare and about 13x the mass of a nodule);
* the share of mask mass outside the lungs (clipped or border-hugging lesions);
* the added disc-minus-ring contrast of synthetic nodules against the contrast of the real nodules (quartiles);
* the share of nodule centres within 10 mm of the lung border, synthetic against real.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import fire
import numpy as np
import torch
from scipy import ndimage

from radlas_monai.baselines.experiment_data import JSRT_ROOT, jsrt_split, load_radiographs
from radlas_monai.transforms import RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis import LESION_FAMILIES
from radlas_monai.transforms.lesion_synthesis.realism import disc_ring_contrast, family_pixel_shares, lesion_centres

logger = logging.getLogger("measure_lesion_synthesis")
SPACING_MM = 0.7
NEAR_BORDER_MM = 10.0


def _quartiles(values: list[float]) -> list[float]:
    finite = np.asarray([v for v in values if np.isfinite(v)])
    return [round(float(q), 4) for q in np.percentile(finite, [25, 50, 75])] if len(finite) else []


def _real_nodules(items: list[dict], images: torch.Tensor, lungs: torch.Tensor) -> tuple[list[float], list[float]]:
    contrasts, depths = [], []
    for k, item in enumerate(items):
        lung = lungs[k, 0].numpy()
        depth = ndimage.distance_transform_edt(np.pad(lung != 0, 1))[1:-1, 1:-1]
        for (col, row), radius in zip(item.get("centers", []), item.get("radii", [])):
            contrasts.append(disc_ring_contrast(images[k, 0].numpy(), row, col, radius))
            depths.append(float(depth[int(row), int(col)]) * SPACING_MM)
    return contrasts, depths


def measure(jsrt_root: str = str(JSRT_ROOT), repeats: int = 8, seed: int = 0) -> dict:
    """Measure the default synthesizer on the JSRT training half (see the module docstring).

    Args:
        jsrt_root: the JSRT nodule folder.
        repeats: synthesis passes over the training half's normal images.
        seed: the synthesizer's seed.

    Returns:
        The measurements as a JSON-friendly dict.
    """
    training = jsrt_split(jsrt_root)["training"]
    normals = [item for item in training if not sum(item.get("label", [0]))]
    nodules = [item for item in training if sum(item.get("label", [0]))]
    images, lungs = load_radiographs(normals, 512)
    nodule_images, nodule_lungs = load_radiographs(nodules, 512)
    real_contrast, real_depth = _real_nodules(nodules, nodule_images, nodule_lungs)
    synth = RandLesionSynthesis(prob=1.0, num_lesions=(1, 3), default_spacing=SPACING_MM).set_random_state(seed)
    mass = {name: 0.0 for name in LESION_FAMILIES}
    outside, total, added, depths = 0.0, 0.0, [], []
    for repeat in range(repeats):
        out = synth(images, lung_mask=lungs)
        mask, family, lung = out.mask.numpy(), out.family.numpy(), lungs.numpy()
        for name, share in family_pixel_shares(mask, family, LESION_FAMILIES).items():
            mass[name] += share * float(mask.sum())
        outside += float((mask * (lung == 0)).sum())
        total += float(mask.sum())
        for b in range(mask.shape[0]):
            for kind, row, col, radius, depth in lesion_centres(mask[b, 0], family[b, 0], lung[b, 0]):
                if kind != LESION_FAMILIES.index("nodule") + 1 or radius < 1.0:
                    continue
                after = disc_ring_contrast(out.image[b, 0].numpy(), row, col, radius)
                added.append(after - disc_ring_contrast(images[b, 0].numpy(), row, col, radius))
                depths.append(depth * SPACING_MM)
        logger.info("pass %d/%d: %d synthetic nodules so far", repeat + 1, repeats, len(added))
    mean_mass = {}
    for name in LESION_FAMILIES:
        alone = RandLesionSynthesis(prob=1.0, num_lesions=1, family_probs={name: 1.0}, default_spacing=SPACING_MM)
        alone.set_random_state(seed)
        mean_mass[name] = sum(float(alone(images, lung_mask=lungs).mask.sum()) for _ in range(2)) / (2 * len(normals))
    weighted = {name: p * mean_mass[name] for name, p in zip(LESION_FAMILIES, synth.family_probs)}
    result = {
        "images": len(normals),
        "mean_mask_mass_per_lesion_px": {name: round(value, 1) for name, value in mean_mass.items()},
        "expected_family_pixel_share": {
            name: round(value / sum(weighted.values()), 4) for name, value in weighted.items()
        },
        "repeats": repeats,
        "sampled_family_pixel_share": {name: round(value / max(total, 1e-12), 4) for name, value in mass.items()},
        "mask_mass_outside_lungs": round(outside / max(total, 1e-12), 4),
        "nodule_contrast_quartiles": {"synthetic_added": _quartiles(added), "real_jsrt": _quartiles(real_contrast)},
        "nodule_centres_within_10mm_of_border": {
            "synthetic": round(float(np.mean(np.asarray(depths) <= NEAR_BORDER_MM)), 4) if depths else None,
            "real_jsrt": round(float(np.mean(np.asarray(real_depth) <= NEAR_BORDER_MM)), 4),
        },
        "counts": {"synthetic_nodules": len(added), "real_nodules": len(real_contrast)},
    }
    return result


def main(
    jsrt_root: str = str(JSRT_ROOT), repeats: int = 8, seed: int = 0, output: str = "synthesis_realism.json"
) -> None:
    """Measure, print and write ``output`` (JSON)."""
    result = measure(jsrt_root, repeats, seed)
    Path(output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    logger.info("wrote %s", output)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(message)s")
    fire.Fire(main)
