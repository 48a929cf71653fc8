"""Draw image | restored | residual | lesion map panels of a trained RadLAS on annotated radiographs.

Usage::

    python scripts/draw_lesion_panels.py --checkpoint /tmp/cmp/work_jsrt/radlas/model.pt --output /tmp/panels.png
    python scripts/draw_lesion_panels.py --checkpoint model.pt --dataset jsrt --count 8 --image_size 256

One row per image: the input, the restored healthy image, the signed residual ``input - restored`` (grey = 0,
contrast-stretched, its range printed), and the lesion map as a colour overlay on the image (contrast-stretched per
image, absolute range printed, so faint maps are visible and not mistaken for strong ones). The true lesion is drawn
as a green circle (centre + radius) and the map's peak as a cyan cross. With ``--dataset jsrt`` the rows are the
JSRT *test half* (the nodule images first); the panels are derived from JSRT images: keep them out of the repository.
"""

from __future__ import annotations

import logging
from pathlib import Path

import fire
import numpy as np
import torch
from PIL import Image, ImageDraw

from radlas_monai.baselines import pretrain_variants as pv
from radlas_monai.interpret.overlay import overlay_heatmap

logger = logging.getLogger("draw_lesion_panels")


def _grey(array: np.ndarray) -> np.ndarray:
    return np.repeat((np.clip(array, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _stretch(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    low, high = float(array.min()), float(array.max())
    return (array - low) / max(high - low, 1e-12), low, high


def panel_row(
    image: np.ndarray, restored: np.ndarray, lesion_map: np.ndarray, centres: list, radii: list
) -> Image.Image:
    """One row of four tiles ``(H, 4 W, 3)`` with captions, the true lesions and the map's peak drawn."""
    residual = image - restored
    bound = max(float(np.abs(residual).max()), 1e-6)
    stretched_map, low, high = _stretch(lesion_map)
    tiles = [
        _grey(image),
        _grey(restored),
        _grey(0.5 + 0.5 * residual / bound),
        overlay_heatmap(image, stretched_map),
    ]
    height, width = image.shape
    row = Image.fromarray(np.concatenate(tiles, axis=1))
    draw = ImageDraw.Draw(row)
    peak_y, peak_x = np.unravel_index(int(lesion_map.argmax()), lesion_map.shape)
    for k in range(4):
        for (cx, cy), r in zip(centres, radii):
            draw.ellipse([k * width + cx - r, cy - r, k * width + cx + r, cy + r], outline=(0, 255, 0), width=1)
        x = k * width + peak_x
        draw.line([x - 5, peak_y, x + 5, peak_y], fill=(0, 255, 255))
        draw.line([x, peak_y - 5, x, peak_y + 5], fill=(0, 255, 255))
    captions = ["input", "restored", f"residual +-{bound:.3f}", f"map {low:.3f}-{high:.3f}"]
    for k, caption in enumerate(captions):
        draw.text((k * width + 3, 3), caption, fill=(255, 255, 0))
    return row


def main(
    checkpoint: str,
    output: str = "lesion_panels.png",
    dataset: str = "jsrt",
    count: int = 8,
    image_size: int = 256,
    preset: str = "tiny",
    jsrt_root: str = str(pv.JSRT_ROOT),
    restorer: str = "conv",
    grounding: str = "unet",
) -> str:
    """Draw ``count`` rows (nodule images of the evaluation split first) and write ``output``."""
    from radlas_monai.networks import RadLAS

    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(message)s")
    data = pv.prepare_experiment_data(dataset, image_size, jsrt_root=jsrt_root)
    order = sorted(range(len(data.test_items)), key=lambda i: not data.test_items[i].get("centers"))[:count]
    budget = pv.PretrainBudget(image_size=image_size, preset=preset)
    network = pv.load_radlas(checkpoint, budget, network_kwargs={"restorer": restorer, "grounding": grounding})
    assert isinstance(network, RadLAS)
    rows = []
    scale = image_size / 512
    for index in order:
        image = data.test_images[index : index + 1]
        with torch.no_grad():
            out = network(image)
        item = data.test_items[index]
        centres = [(x * scale, y * scale) for x, y in item.get("centers", [])]
        radii = [r * scale for r in item.get("radii", [])]
        rows.append(
            panel_row(image[0, 0].numpy(), out.restored[0, 0].numpy(), out.lesion_map[0, 0].numpy(), centres, radii)
        )
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)))
    for k, row in enumerate(rows):
        sheet.paste(row, (0, k * row.height))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output)
    logger.info("wrote %s (%d rows)", output, len(rows))
    return output


if __name__ == "__main__":
    fire.Fire(main)
