"""RSNA Pneumonia Detection Challenge -> datalist (Shih et al., Radiology: AI 2019).

Real file layout (Kaggle ``rsna-pneumonia-detection-challenge``)::

    root/
      stage_2_train_labels.csv          patientId,x,y,width,height,Target
                                        (one row per box; Target 0 rows have blank x, y, width, height)
      stage_2_detailed_class_info.csv   patientId,class   ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")
      stage_2_train_images/<patientId>.dcm
      stage_2_test_images/<patientId>.dcm   (labels never released: not in the datalist)

(the stage 1 names ``stage_1_train_labels.csv`` / ``stage_1_train_images`` are used when stage 2 is absent).

Label policy: one class, ``Pneumonia`` (the challenge's "Lung Opacity" = opacity suspicious for pneumonia);
``Target`` 1 rows give boxes ``[x, y, x + width, y + height]`` in the 1024 x 1024 DICOM grid. Images of class
"No Lung Opacity / Not Normal" are abnormal but not pneumonia: they are negatives, or left out with
``exclude_not_normal=True`` (so that every negative is a normal radiograph).

Splits: by ``patientId`` (one image per id in this dataset) into training / validation / test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import find_table, keep_existing, make_item, parse_float, read_records
from radlas_monai.data.datalist import make_datalist, split_by_patient

__all__ = ["CLASS_NAMES", "build_datalist"]

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("Pneumonia",)
_NOT_NORMAL = "No Lung Opacity / Not Normal"


def _boxes_by_patient(path: Path) -> dict[str, list[list[float]]]:
    boxes: dict[str, list[list[float]]] = {}
    for row in read_records(path, required=("patientId", "x", "y", "width", "height", "Target")):
        image_boxes = boxes.setdefault(row["patientId"], [])
        if int(float(row["Target"])) != 1:
            continue
        x, y, w, h = (parse_float(row[k]) for k in ("x", "y", "width", "height"))
        if None in (x, y, w, h):
            raise ValueError(f"{path}: patientId {row['patientId']} has Target 1 but a blank box")
        image_boxes.append([x, y, x + w, y + h])  # type: ignore[operator]
    return boxes


def build_datalist(
    root: str | os.PathLike,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    exclude_not_normal: bool = False,
    require_images: bool = True,
) -> dict:
    """Build the RSNA Pneumonia datalist.

    Args:
        root: the competition folder (see the module docstring).
        split: fractions of (training, validation, test), by patient.
        seed: seed of the split.
        exclude_not_normal: leave out "No Lung Opacity / Not Normal" images (needs the detailed class table).
        require_images: leave out images that are not on disk.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: the labels table (or, with ``exclude_not_normal``, the class table) is missing.
    """
    root = Path(root)
    labels = find_table(root, ["stage_2_train_labels.csv", "stage_1_train_labels.csv"], "RSNA Pneumonia")
    stage = labels.name.split("_train_labels")[0]
    boxes = _boxes_by_patient(labels)
    if exclude_not_normal:
        info = find_table(root, [f"{stage}_detailed_class_info.csv"], "RSNA Pneumonia")
        not_normal = {r["patientId"] for r in read_records(info, ("patientId", "class")) if r["class"] == _NOT_NORMAL}
        boxes = {k: v for k, v in boxes.items() if k not in not_normal}
        logger.info("RSNA Pneumonia: left out %d 'No Lung Opacity / Not Normal' images", len(not_normal))
    items = []
    for patient, image_boxes in boxes.items():
        findings = list(CLASS_NAMES) if image_boxes else []
        items.append(make_item(f"{stage}_train_images/{patient}.dcm", findings, CLASS_NAMES, patient,
                               boxes=image_boxes, box_findings=["Pneumonia"] * len(image_boxes)))  # fmt: skip
    if require_images:
        items = keep_existing(items, root, "RSNA Pneumonia")
    description = (
        f"RSNA Pneumonia Detection ({stage}): split by patientId {tuple(split)}, seed {seed}; boxes from "
        f"Target 1 rows; 'No Lung Opacity / Not Normal' {'left out' if exclude_not_normal else 'kept as negatives'}"
    )
    splits = split_by_patient(items, split, seed=seed)
    return make_datalist("RSNA Pneumonia", description, CLASS_NAMES, splits, seed=seed)
