"""Write the embedded synthetic dataset to disk: images, masks and one datalist JSON.

The layout under ``output_dir``::

    datalist.json                 training / validation / test, split by patient (written last)
    images/SYN-000000.png         8-bit PNG; with formats "dicom" / "nifti" a share of the images
    images/SYN-000001.dcm         is written as 12-bit DICOM (every other one MONOCHROME1) or
    images/SYN-000002.nii.gz      uint8 NIfTI instead, so that every reader path is exercised
    lung_masks/SYN-000000.png     uint8 0 / 255, nonzero = lung field
    masks/SYN-000000.png          uint8 0 / 255, union of all findings (all zero for normal images)

Each image is its own pseudonymous patient ``SYN-000123``. Every file is written to a temporary
name and renamed, the previous datalist is removed before anything else is written and the new one
is written last, so an interrupted run never leaves a datalist that points at missing or stale files;
re-running with the same arguments rewrites the same bytes.

Example::

    from radlas_monai.data.synthetic import ensure_synthetic_dataset
    from radlas_monai.data.datalist import load_datalist

    datalist = ensure_synthetic_dataset(num_images=200)       # generated once, then reused
    train = load_datalist(datalist, "training")
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from radlas_monai.data.datalist import split_by_patient, write_datalist
from radlas_monai.data.synthetic.generator import DEFAULT_NORMAL_PROB, SyntheticRadiograph, render_radiograph
from radlas_monai.data.vocabulary import SYNTHETIC_FINDINGS
from radlas_monai.data.writers import write_dicom, write_nifti, write_png

__all__ = [
    "DATALIST_NAME",
    "GENERATOR_VERSION",
    "IMAGE_FORMATS",
    "default_dataset_dir",
    "image_seed",
    "generate_dataset",
    "ensure_synthetic_dataset",
]

logger = logging.getLogger(__name__)

DATALIST_NAME = "datalist.json"
#: Bumped whenever rendering changes, so that cached datasets are regenerated.
GENERATOR_VERSION = 1
IMAGE_FORMATS: tuple[str, ...] = ("png", "dicom", "nifti")
_SUFFIXES = {"png": ".png", "dicom": ".dcm", "nifti": ".nii.gz"}
_OWN_FILE = re.compile(r"^SYN-\d{6}(\.png|\.dcm|\.nii\.gz)$")
_DICOM_MAX = 4095  # 12 bits stored


def default_dataset_dir() -> Path:
    """The per-user cache folder of synthetic datasets.

    Returns:
        ``$RADLAS_DATA_DIR`` when set, else ``$XDG_CACHE_HOME/radlas_monai/synthetic`` (by default
        ``~/.cache/radlas_monai/synthetic``).
    """
    env = os.environ.get("RADLAS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "radlas_monai" / "synthetic"


def image_seed(seed: int, index: int) -> int:
    """The render seed of image ``index`` of the dataset with seed ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def _check_args(num_images: int, image_size: int, formats: Sequence[str], split: Sequence[float]) -> list[str]:
    if int(num_images) < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if isinstance(formats, str):
        formats = [formats]
    formats = [str(f).lower() for f in formats]
    unknown = [f for f in formats if f not in IMAGE_FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {list(IMAGE_FORMATS)}, got {list(formats)}")
    values = [float(f) for f in split]
    if len(values) != 3 or any(not np.isfinite(f) or f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(
            f"split must be three non-negative fractions (training, validation, test) summing to 1, got {split}"
        )
    return list(dict.fromkeys(formats))


def _image_format(index: int, formats: Sequence[str]) -> str:
    """PNG by default; every 3rd image DICOM and every 5th NIfTI when those formats are asked for."""
    primary = "png" if "png" in formats else formats[0]
    if "dicom" in formats and primary != "dicom" and index % 3 == 1:
        return "dicom"
    if "nifti" in formats and primary != "nifti" and index % 5 == 2:
        return "nifti"
    return primary


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` to a temporary sibling (same suffixes), then rename onto ``path``."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_image(sample: SyntheticRadiograph, path: Path, fmt: str, monochrome1: bool) -> None:
    image = sample.image
    if fmt == "png":
        _atomic(path, lambda p: write_png(np.rint(image * 255).astype(np.uint8), p))
    elif fmt == "nifti":
        _atomic(path, lambda p: write_nifti(np.rint(image * 255).astype(np.uint8), p, spacing=sample.spacing))
    else:
        stored = np.rint(image * _DICOM_MAX).astype(np.uint16)
        photometric = "MONOCHROME2"
        if monochrome1:  # high stored value = black
            stored, photometric = (_DICOM_MAX - stored).astype(np.uint16), "MONOCHROME1"
        # a window mapping stored 0..4095 linearly onto 0..1, so every reader sees the PNG's intensities
        kwargs = {"spacing": sample.spacing, "photometric": photometric, "bits_stored": 12, "modality": "DX"}
        _atomic(path, lambda p: write_dicom(stored, p, window=(_DICOM_MAX / 2 + 0.5, _DICOM_MAX + 1), **kwargs))


def _item(sample: SyntheticRadiograph, patient: str, image: str) -> dict:
    present = set(sample.finding_names)
    return {
        "image": image,
        "label": list(sample.label),
        "findings": [name for name in SYNTHETIC_FINDINGS if name in present],
        "boxes": [list(f.box) for f in sample.findings],
        "box_findings": [f.name for f in sample.findings],
        "centers": [[round(c, 2) for c in f.center] for f in sample.findings],
        "radii": [round(f.equivalent_radius, 2) for f in sample.findings],
        "mask": f"masks/{patient}.png",
        "lung_mask": f"lung_masks/{patient}.png",
        "patient": patient,
        "spacing": [float(s) for s in sample.spacing],
        "seed": sample.seed,
    }


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete this generator's files (``SYN-NNNNNN.*``) that the new datalist does not reference."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _OWN_FILE.match(path.name) and path.name not in keep:
            path.unlink()


def generate_dataset(
    output_dir: str | os.PathLike,
    num_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    formats: Sequence[str] = ("png",),
    split: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    normal_prob: float = DEFAULT_NORMAL_PROB,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``num_images`` synthetic radiographs and write them with masks and a datalist.

    Args:
        output_dir: dataset folder (created); files of a previous run are overwritten.
        num_images: number of images (= patients).
        image_size: side of the square images in pixels.
        seed: dataset seed; image ``i`` is rendered with :func:`image_seed` ``(seed, i)``, the
            patient split is shuffled with ``seed``.
        formats: subset of ``("png", "dicom", "nifti")``: PNG for all images when present, with every
            3rd image as DICOM and every 5th as NIfTI when asked for (all images in the first listed
            format when PNG is absent).
        split: fractions of patients for training, validation and test.
        normal_prob: probability that an image has no finding.
        progress: called as ``progress(done, total)`` after each image.

    Returns:
        Path of the datalist JSON (``output_dir / "datalist.json"``), readable with
        ``monai.data.load_decathlon_datalist(path, data_list_key="training", base_dir=output_dir)``.

    Raises:
        ValueError: bad counts, sizes, formats or split fractions.
    """
    fmts = _check_args(num_images, image_size, formats, split)
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    datalist_path = root / DATALIST_NAME
    datalist_path.unlink(missing_ok=True)  # never leave an old datalist next to half-rewritten files
    for sub in ("images", "masks", "lung_masks"):
        (root / sub).mkdir(exist_ok=True)
    items, dicom_count, total = [], 0, int(num_images)
    for index in range(total):
        patient = f"SYN-{index:06d}"
        sample = render_radiograph(image_seed(seed, index), image_size, normal_prob=normal_prob)
        fmt = _image_format(index, fmts)
        image_rel = f"images/{patient}{_SUFFIXES[fmt]}"
        _write_image(sample, root / image_rel, fmt, monochrome1=fmt == "dicom" and dicom_count % 2 == 1)
        dicom_count += fmt == "dicom"
        _atomic(root / "lung_masks" / f"{patient}.png", lambda p, s=sample: write_png(s.lung_mask * np.uint8(255), p))
        _atomic(root / "masks" / f"{patient}.png", lambda p, s=sample: write_png(s.lesion_mask * np.uint8(255), p))
        items.append(_item(sample, patient, image_rel))
        if progress is not None:
            progress(index + 1, total)
    _remove_stale(root / "images", {Path(item["image"]).name for item in items})
    _remove_stale(root / "masks", {Path(item["mask"]).name for item in items})
    _remove_stale(root / "lung_masks", {Path(item["lung_mask"]).name for item in items})
    datalist = {
        "name": "radlas-synthetic-cxr",
        "description": (
            "Procedural PA chest radiographs with labelled findings, rendered by radlas_monai.data.synthetic "
            "(one pseudonymous patient per image; no real patient data)."
        ),
        "class_names": list(SYNTHETIC_FINDINGS),
        **split_by_patient(items, fractions=[float(f) for f in split], seed=int(seed)),
        "num_images": total,
        "image_size": int(image_size),
        "seed": int(seed),
        "formats": fmts,
        "normal_prob": float(normal_prob),
        "generator_version": GENERATOR_VERSION,
    }
    write_datalist(datalist, datalist_path)
    logger.info("synthetic dataset of %d images (%d px) written to %s", total, image_size, root)
    return datalist_path


def _matches(datalist_path: Path, expected: dict) -> bool:
    """Whether an existing datalist was written with ``expected`` arguments and its files are all there."""
    try:
        with open(datalist_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    if any(data.get(key) != value for key, value in expected.items()):
        return False
    root = datalist_path.parent
    items = [item for key in ("training", "validation", "test") for item in data.get(key, [])]
    return len(items) == expected["num_images"] and all(
        (root / item[key]).is_file() for item in items for key in ("image", "mask", "lung_mask")
    )


def _acquire_lock(lock: Path, timeout: float) -> bool:
    """Create ``lock`` exclusively; wait while another process holds it. False when the wait timed out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def ensure_synthetic_dataset(
    root: str | os.PathLike | None = None,
    num_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    formats: Sequence[str] = ("png",),
    *,
    timeout: float = 1800.0,
) -> Path:
    """Generate the synthetic dataset once and reuse it: the bundles' default data.

    The dataset lives in ``root / f"n{num_images}_s{image_size}_seed{seed}"`` (plus ``_<formats>`` for
    non-PNG formats). It is reused when its datalist records the same arguments and generator version
    and all its files exist; otherwise it is (re)generated. Concurrent callers (e.g. the ranks of a
    distributed run) wait for the one that generates.

    Args:
        root: cache folder; ``None`` uses :func:`default_dataset_dir`.
        num_images: number of images.
        image_size: side of the square images in pixels.
        seed: dataset seed.
        formats: see :func:`generate_dataset`.
        timeout: seconds to wait for another process that is generating the same dataset.

    Returns:
        Path of the datalist JSON.

    Raises:
        ValueError: bad arguments (see :func:`generate_dataset`).
        TimeoutError: another process held the dataset's lock for longer than ``timeout``.
    """
    fmts = _check_args(num_images, image_size, formats, (0.7, 0.15, 0.15))
    name = f"n{int(num_images)}_s{int(image_size)}_seed{int(seed)}"
    if fmts != ["png"]:
        name += "_" + "-".join(fmts)
    folder = Path(root).expanduser() if root is not None else default_dataset_dir()
    folder = folder / name
    datalist_path = folder / DATALIST_NAME
    expected = {
        "num_images": int(num_images),
        "image_size": int(image_size),
        "seed": int(seed),
        "formats": fmts,
        "generator_version": GENERATOR_VERSION,
    }
    if _matches(datalist_path, expected):
        return datalist_path
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".generating.lock"
    if not _acquire_lock(lock, timeout):
        raise TimeoutError(f"{lock} is held by another process for more than {timeout} s; remove it if stale")
    try:
        if _matches(datalist_path, expected):  # another process finished it while we waited
            return datalist_path
        logger.info("generating the synthetic dataset %s (%d images, %d px)", folder, num_images, image_size)
        return generate_dataset(folder, num_images, image_size, seed, formats=fmts)
    finally:
        lock.unlink(missing_ok=True)
