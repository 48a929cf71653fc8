"""Draw a contact sheet of a datalist: images with lung / lesion outlines, boxes and captions.

Usage::

    python scripts/preview_data.py                     # default synthetic dataset -> ./synthetic_preview.png
    python scripts/preview_data.py --datalist data/jsrt/datalist.json --split validation --output jsrt.png

Without ``--datalist`` the default synthetic dataset is generated once into the cache
(``radlas_monai.data.synthetic.ensure_synthetic_dataset``) and drawn.
"""

from __future__ import annotations

import logging

import fire

from radlas_monai.data.preview import make_contact_sheet
from radlas_monai.data.synthetic import ensure_synthetic_dataset

logger = logging.getLogger("preview_data")


def main(
    datalist: str | None = None,
    output: str = "synthetic_preview.png",
    split: str = "training",
    max_images: int = 16,
    columns: int = 4,
    tile_size: int = 256,
    num_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    root: str | None = None,
) -> None:
    """Write the contact sheet and log its path.

    Args:
        datalist: a datalist JSON; default: the synthetic dataset of ``num_images`` / ``image_size`` / ``seed``.
        output: destination PNG.
        split: the split to draw.
        max_images: number of images drawn.
        columns: tiles per row.
        tile_size: tile side in pixels.
        num_images: size of the synthetic dataset (only without ``--datalist``).
        image_size: image side of the synthetic dataset (only without ``--datalist``).
        seed: seed of the synthetic dataset (only without ``--datalist``).
        root: cache folder of the synthetic dataset (default: ``default_dataset_dir()``).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if datalist is None:
        datalist = str(ensure_synthetic_dataset(root=root, num_images=num_images, image_size=image_size, seed=seed))
        logger.info("synthetic datalist: %s", datalist)
    path = make_contact_sheet(
        datalist, output, split=split, max_images=max_images, columns=columns, tile_size=tile_size
    )
    logger.info("contact sheet written to %s", path.resolve())


if __name__ == "__main__":
    fire.Fire(main)
