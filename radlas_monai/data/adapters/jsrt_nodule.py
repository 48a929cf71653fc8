"""JSRT nodule subset in the project's 512-px CSV layout (``shared/data/jsrt_nodule``) -> datalist.

File layout::

    root/
      labels.csv     image,study_id,label,state,subtlety,size_mm,age,sex,position,diagnosis,cx,cy,radius,
                     x0,y0,x1,y1,cx_2048,cy_2048,width,height,win_lo,win_hi
                     (one row per image; nodule columns blank for the 93 non-nodule images; coordinates in
                     the 512 x 512 grid, origin top-left, x = column; radius = size_mm / 0.175 / 2 / 4)
      images/JPCLN001.png ...          8-bit MONOCHROME2 PNGs (lungs dark), 512 x 512
      lung_masks/JPCLN001.png ...      union of the SCR left and right lung masks (0 / 255)

Label policy: ``label`` 1 -> ``findings`` ["Nodule"] with ``centers`` [[cx, cy]], ``radii`` [radius] and the
box centre +/- radius (derived from centre and diameter, as the CSV's own x0..y1); ``label`` 0 -> no finding.
``lung_mask`` points at ``lung_masks/<study_id>.png`` when it exists; ``spacing`` is 0.175 mm x 2048 / width.
Patient = ``study_id`` (one image per patient). Split by patient with a fixed seed, or into cross-validation
folds: ``fold=k`` holds out fold ``k`` of ``num_folds`` as ``"validation"`` (the folds depend on ``seed`` only).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import keep_existing, make_item, parse_float, read_records, split_or_fold
from radlas_monai.data.datalist import make_datalist

__all__ = ["CLASS_NAMES", "build_datalist"]

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("Nodule",)
_ORIGINAL_SIZE = 2048
_ORIGINAL_SPACING_MM = 0.175


def _item(root: Path, row: dict[str, str]) -> dict:
    study = row["study_id"]
    lung_mask = f"lung_masks/{study}.png"
    width = parse_float(row.get("width", "")) or 512.0
    spacing_mm = round(_ORIGINAL_SPACING_MM * _ORIGINAL_SIZE / width, 6)
    extra: dict = {"lung_mask": lung_mask if (root / lung_mask).is_file() else None, "spacing": [spacing_mm] * 2}
    if int(float(row["label"])) != 1:
        return make_item(row["image"], [], CLASS_NAMES, study, **extra)
    cx, cy, radius = (parse_float(row[k]) for k in ("cx", "cy", "radius"))
    if cx is None or cy is None or radius is None:
        raise ValueError(f"labels.csv: nodule image {study} lacks cx, cy or radius: {row}")
    box = [round(cx - radius, 4), round(cy - radius, 4), round(cx + radius, 4), round(cy + radius, 4)]
    extra.update(centers=[[cx, cy]], radii=[radius], boxes=[box], box_findings=list(CLASS_NAMES))
    return make_item(row["image"], list(CLASS_NAMES), CLASS_NAMES, study, **extra)


def build_datalist(
    root: str | os.PathLike,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    fold: int | None = None,
    num_folds: int | None = 5,
    require_images: bool = True,
) -> dict:
    """Build the datalist of the 512-px JSRT nodule folder.

    Args:
        root: the folder holding ``labels.csv``, ``images/`` and ``lung_masks/``.
        split: fractions of (training, validation, test) when ``fold`` is ``None``.
        seed: seed of the split / folds.
        fold: held-out fold (-> ``"validation"``; training = the other folds; test empty), or ``None``.
        num_folds: number of folds when ``fold`` is given.
        require_images: leave out rows whose image is not on disk.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: no ``labels.csv``.
        KeyError: a required column is missing.
    """
    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"JSRT nodule: no labels.csv in {root}")
    rows = read_records(table, required=("image", "study_id", "label", "cx", "cy", "radius"))
    items = [_item(root, row) for row in rows]
    if require_images:
        items = keep_existing(items, root, "JSRT nodule")
    splits = split_or_fold(items, split, seed, fold, num_folds)
    how = f"fold {fold} of {num_folds} held out as validation" if fold is not None else f"split {tuple(split)}"
    description = f"JSRT nodule subset (512 px): {how} by patient, seed {seed}; centres, radii and derived boxes"
    return make_datalist("JSRT nodule", description, CLASS_NAMES, splits, seed=seed)
