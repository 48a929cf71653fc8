"""SIIM-ACR Pneumothorax Segmentation -> datalist with decoded mask PNGs.

Real file layout (the challenge's original release, e.g. the Kaggle copy ``siim-acr-pneumothorax``)::

    root/
      train-rle.csv   header "ImageId, EncodedPixels" -- the second column name has a leading space, and so
                      do its values (" -1", " 175349 7 1013 12 ..."); one row per pneumothorax component
                      (several rows per image), " -1" for an image without pneumothorax
      dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<ImageId>.dcm   (1024 x 1024, one per row id)
      dicom-images-test/...   (no labels: not in the datalist)

Label policy: one class, ``Pneumothorax``. The run-length strings (:mod:`radlas_monai.data.rle`: relative,
column-major) of an image are decoded on the image's grid (``Rows`` x ``Columns`` from the DICOM header, else
``image_size``) and their union is written as a uint8 PNG (0 / 255) to ``output_dir/masks/<ImageId>.png``,
for negative images too (an all-zero mask), so that every item has a ``mask``. Masks are derived files: they
are written where you say, never into the dataset folder unless ``output_dir`` points there. Existing mask
files are kept unless ``overwrite``.

Patient: with ``patient_from_dicom`` the DICOM ``PatientID`` (a random UID in this de-identified release, not a
name) groups the images; otherwise each image is its own patient. Split by patient into training / validation
/ test. Ids without a DICOM file (a few exist in the release) are left out with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radlas_monai.data.adapters._common import find_table, make_item, read_table
from radlas_monai.data.datalist import make_datalist, split_by_patient
from radlas_monai.data.rle import rle_decode

__all__ = ["CLASS_NAMES", "build_datalist", "read_rle_table"]

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("Pneumothorax",)


def read_rle_table(path: Path) -> dict[str, list[str]]:
    """``ImageId -> [run-length strings]`` (``"-1"`` rows give an empty list), in file order."""
    header, rows = read_table(path)  # header cells are stripped: " EncodedPixels" -> "EncodedPixels"
    if header[:2] != ["ImageId", "EncodedPixels"]:
        raise KeyError(f"{path}: expected the columns 'ImageId, EncodedPixels', got {header}")
    encodings: dict[str, list[str]] = {}
    for row in rows:
        runs = encodings.setdefault(row[0].strip(), [])
        value = row[1].strip() if len(row) > 1 else "-1"
        if value not in ("", "-1"):
            runs.append(value)
    return encodings


def _dicom_header(path: Path) -> tuple[str, int | None, int | None]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID", "Rows", "Columns"])
    rows, columns = ds.get("Rows"), ds.get("Columns")
    return str(ds.get("PatientID", "") or ""), int(rows) if rows else None, int(columns) if columns else None


def _write_mask(runs: list[str], shape: tuple[int, int], path: Path) -> None:
    from radlas_monai.data.writers import write_png

    mask = np.zeros(shape, dtype=np.uint8)
    for run in runs:
        mask |= rle_decode(run, *shape)
    write_png(mask * np.uint8(255), path)


def build_datalist(
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    patient_from_dicom: bool = True,
    image_size: tuple[int, int] = (1024, 1024),
    overwrite: bool = False,
) -> dict:
    """Build the SIIM-ACR datalist, decoding the run-length masks into PNGs under ``output_dir/masks``.

    Args:
        root: the dataset folder (see the module docstring).
        output_dir: where the mask PNGs are written (``masks/`` inside it).
        split: fractions of (training, validation, test), by patient.
        seed: seed of the split.
        patient_from_dicom: group images by the DICOM ``PatientID`` (reads each header once).
        image_size: ``(rows, columns)`` used when a DICOM header gives none.
        overwrite: rewrite existing mask files.

    Returns:
        The datalist; image and mask paths are relative to ``root`` (masks may be ``../...``).

    Raises:
        FileNotFoundError: ``train-rle.csv`` is missing.
        ValueError: a malformed run-length string (the message names the image).
    """
    root, output_dir = Path(root), Path(output_dir)
    encodings = read_rle_table(find_table(root, ["train-rle.csv"], "SIIM-ACR"))
    dicoms = {p.stem: p for p in sorted((root / "dicom-images-train").rglob("*.dcm"))}
    items, missing = [], []
    for image_id, runs in encodings.items():
        dicom = dicoms.get(image_id)
        if dicom is None:
            missing.append(image_id)
            continue
        patient, rows, columns = _dicom_header(dicom) if patient_from_dicom else ("", None, None)
        shape = (rows or int(image_size[0]), columns or int(image_size[1]))
        mask_path = output_dir / "masks" / f"{image_id}.png"
        if overwrite or not mask_path.is_file():
            try:
                _write_mask(runs, shape, mask_path)
            except ValueError as err:
                raise ValueError(f"SIIM-ACR {image_id}: {err}") from err
        findings = list(CLASS_NAMES) if runs else []
        mask_rel = Path(os.path.relpath(mask_path.resolve(), root.resolve())).as_posix()
        image_rel = Path(os.path.relpath(dicom, root)).as_posix()
        items.append(make_item(image_rel, findings, CLASS_NAMES, patient or image_id, mask=mask_rel))
    if missing:
        logger.warning("SIIM-ACR: %d image ids of train-rle.csv have no DICOM file (e.g. %s); left out",
                       len(missing), missing[0])  # fmt: skip
    description = (
        f"SIIM-ACR Pneumothorax: train-rle.csv masks decoded to {output_dir.name}/masks (0/255 PNG); split by "
        f"{'DICOM PatientID' if patient_from_dicom else 'image'} {tuple(split)}, seed {seed}"
    )
    return make_datalist("SIIM-ACR Pneumothorax", description, CLASS_NAMES, split_by_patient(items, split, seed=seed),
                         seed=seed)  # fmt: skip
