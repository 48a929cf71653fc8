"""Does the restorer restore? Mean |input - restored| on lesions against anatomy, synthetic and real.

Usage::

    python scripts/measure_restoration.py --checkpoint /tmp/cmp/work_jsrt/radlas/model.pt --image_size 256
    python scripts/measure_restoration.py --checkpoint /tmp/cmp/val/radlas/model.pt --split validation

On the JSRT *test half* (the shared folder): the mean residual inside the real nodule discs against the rest of the
lung (the lung masks), and, on the test half's normal images with the pretraining synthesizer's lesions written in,
inside the synthetic lesion cores (mask > 0.5) against the rest of the lung. An identity restorer gives a ratio of
about 1; a restorer that removes lesions and keeps anatomy gives a ratio well above 1. Also reported: the share of
test images whose lesion-map peak lies outside the lungs (the network never sees a lung mask at inference).
"""

from __future__ import annotations

import json
import logging

import fire
import numpy as np
import torch

from radlas_monai.baselines import pretrain_variants as pv
from radlas_monai.baselines.experiment_data import load_radiographs

logger = logging.getLogger("measure_restoration")


def _discs(item: dict, size: int) -> np.ndarray:
    scale = size / 512
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.zeros((size, size), bool)
    for (cx, cy), r in zip(item.get("centers", []), item.get("radii", [])):
        disc |= (xx - cx * scale) ** 2 + (yy - cy * scale) ** 2 <= (r * scale) ** 2
    return disc


def measure(
    checkpoint: str,
    image_size: int = 256,
    preset: str = "tiny",
    jsrt_root: str = str(pv.JSRT_ROOT),
    restorer: str = "conv",
    grounding: str = "unet",
    seed: int = 0,
    split: str = "test",
) -> dict:
    """Residual means and ratios (see the module docstring); printed as JSON.

    ``split``: ``"test"`` (the test half) or ``"validation"`` (the held-out part of the training half, for choosing
    settings; see :func:`~radlas_monai.baselines.experiment_data.jsrt_split`)."""
    from radlas_monai.transforms import RandLesionSynthesis

    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(message)s")
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
    test = pv.jsrt_split(jsrt_root)[split]
    images, lungs = load_radiographs(test, image_size)
    budget = pv.PretrainBudget(image_size=image_size, preset=preset)
    network = pv.load_radlas(checkpoint, budget, network_kwargs={"restorer": restorer, "grounding": grounding})
    real_in, real_out, synth_in, synth_out, outside = [], [], [], [], []
    normals = [k for k, item in enumerate(test) if not item.get("centers")]
    synth = RandLesionSynthesis(prob=1.0, num_lesions=(1, 3), default_spacing=0.7 * 512 / image_size)
    synth.set_random_state(seed)
    corrupted = synth(images[normals], lung_mask=lungs[normals])
    with torch.no_grad():
        for k, item in enumerate(test):
            lung = lungs[k, 0].numpy() > 0
            out = network(images[k : k + 1])
            residual = (images[k : k + 1] - out.restored).abs()[0, 0].numpy()
            peak = np.unravel_index(int(out.lesion_map[0, 0].argmax()), lung.shape)
            outside.append(not lung[peak])
            if item.get("centers"):
                disc = _discs(item, image_size)
                real_in.append(residual[disc].mean())
                real_out.append(residual[lung & ~disc].mean())
        for j, k in enumerate(normals):
            x = corrupted.image[j : j + 1]
            residual = (x - network.restore(x)).abs()[0, 0].numpy()
            core, lung = corrupted.mask[j, 0].numpy() > 0.5, lungs[k, 0].numpy() > 0
            if core.any():
                synth_in.append(residual[core].mean())
                synth_out.append(residual[lung & ~core].mean())
    result = {
        "real_nodules": {"inside": float(np.mean(real_in)), "lung_background": float(np.mean(real_out))},
        "synthetic_lesions": {"inside": float(np.mean(synth_in)), "lung_background": float(np.mean(synth_out))},
        "map_peaks_outside_lungs": float(np.mean(outside)),
        "n_nodule_images": len(real_in),
        "n_synthetic_images": len(synth_in),
        "split": split,
        "n_images": len(test),
    }
    for key in ("real_nodules", "synthetic_lesions"):
        result[key]["ratio"] = result[key]["inside"] / max(result[key]["lung_background"], 1e-12)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    fire.Fire(measure, serialize=lambda result: None)
