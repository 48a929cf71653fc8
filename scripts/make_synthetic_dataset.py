"""Generate the embedded synthetic chest-radiograph dataset (images, masks, datalist JSON).

Usage::

    python scripts/make_synthetic_dataset.py                                  # 200 x 256 px into the cache
    python scripts/make_synthetic_dataset.py --output_dir data/syn --num_images 500 --image_size 512 \
        --formats png,dicom,nifti --seed 1

Without ``--output_dir`` the dataset goes where the bundles look for it
(``radlas_monai.data.synthetic.default_dataset_dir() / n{num}_s{size}_seed{seed}``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import fire

from radlas_monai.data.synthetic import default_dataset_dir, generate_dataset

logger = logging.getLogger("make_synthetic_dataset")


def _as_list(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def main(
    output_dir: str | None = None,
    num_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    formats: str | Sequence[str] = "png",
    split: Sequence[float] = (0.7, 0.15, 0.15),
    normal_prob: float = 0.35,
) -> str:
    """Write the dataset and return the datalist path.

    Args:
        output_dir: dataset folder; default: the bundles' cache folder for these arguments.
        num_images: number of images (one pseudonymous patient each).
        image_size: side of the square images in pixels.
        seed: dataset seed.
        formats: comma-separated subset of png, dicom, nifti.
        split: training / validation / test fractions.
        normal_prob: probability of an image without findings.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fmts = _as_list(formats)
    if output_dir is None:
        name = f"n{int(num_images)}_s{int(image_size)}_seed{int(seed)}"
        if fmts != ["png"]:
            name += "_" + "-".join(dict.fromkeys(f.lower() for f in fmts))
        output_dir = str(default_dataset_dir() / name)
    start = time.perf_counter()
    step = max(1, int(num_images) // 20)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.perf_counter() - start, 1e-9)
            logger.info("%d / %d images (%.1f images/s)", done, total, rate)

    path = generate_dataset(
        Path(output_dir),
        num_images=int(num_images),
        image_size=int(image_size),
        seed=int(seed),
        formats=fmts,
        split=tuple(float(f) for f in split),
        normal_prob=float(normal_prob),
        progress=progress,
    )
    logger.info("datalist: %s (%.1f s)", path, time.perf_counter() - start)
    return str(path)


if __name__ == "__main__":
    fire.Fire(main)
