"""Studies folders for the MONAI Label app: the default synthetic one, and the datastore's own state folder.

MONAI Label's ``LocalDatastore`` lists the image files at the top of a studies folder and writes its index
(``datastore_v2.json``), a ``.lock`` file and ``labels/`` folders. The RadLAS app keeps those out of the
user's studies folder: they go to :func:`datastore_state_dir` (one per studies folder, in the cache), and
the studies folder is only read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "IMAGE_PATTERNS",
    "label_cache_dir",
    "default_studies_dir",
    "datastore_state_dir",
    "ensure_default_studies",
    "list_study_images",
]

logger = logging.getLogger(__name__)

#: Files the datastore lists (single-frame DICOM included; MONAI Label's default omits ``*.dcm``).
IMAGE_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.dcm")
DEFAULT_NUM_IMAGES = 8
DEFAULT_IMAGE_SIZE = 512


def label_cache_dir() -> Path:
    """``$RADLAS_LABEL_CACHE`` or ``$XDG_CACHE_HOME/radlas_monai/label`` (``~/.cache/radlas_monai/label``)."""
    env = os.environ.get("RADLAS_LABEL_CACHE")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "radlas_monai" / "label"


def default_studies_dir() -> Path:
    """The default studies folder: embedded synthetic radiographs in the cache."""
    return label_cache_dir() / "studies" / f"synthetic_n{DEFAULT_NUM_IMAGES}_s{DEFAULT_IMAGE_SIZE}"


def datastore_state_dir(studies: str | os.PathLike) -> Path:
    """Where the datastore of ``studies`` keeps its index, lock and labels (outside the studies folder)."""
    real = os.path.realpath(os.fspath(studies))
    digest = hashlib.sha256(real.encode("utf-8")).hexdigest()[:16]
    return label_cache_dir() / "datastore" / f"{Path(real).name}-{digest}"


def list_study_images(studies: str | os.PathLike) -> list[str]:
    """Image file names at the top of ``studies`` that the datastore serves (sorted)."""
    folder = Path(studies)
    names = {p.name for pattern in IMAGE_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(names)


def ensure_default_studies(
    folder: str | os.PathLike | None = None,
    num_images: int = DEFAULT_NUM_IMAGES,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
) -> Path:
    """Write synthetic radiographs (PNG and single-frame DX DICOM) into ``folder`` unless it has images.

    Args:
        folder: the studies folder; ``None``: :func:`default_studies_dir`.
        num_images: images rendered on first use (every 3rd is DICOM, the rest PNG).
        image_size: their side in pixels.
        seed: rendering seed.

    Returns:
        The folder.
    """
    from radlas_monai.data.synthetic.dataset import generate_dataset

    target = Path(folder) if folder is not None else default_studies_dir()
    if target.is_dir() and list_study_images(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    logger.info("writing %d synthetic radiographs into %s", num_images, target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".synthetic-") as scratch:
        generate_dataset(scratch, num_images=num_images, image_size=image_size, seed=seed, formats=("png", "dicom"))
        for image in sorted((Path(scratch) / "images").iterdir()):
            shutil.move(str(image), str(target / image.name))
    return target
