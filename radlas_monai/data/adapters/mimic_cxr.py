"""MIMIC-CXR-JPG 2.0.0 -> datalist (Johnson et al., PhysioNet 2019).

Real file layout (``root`` = ``physionet.org/files/mimic-cxr-jpg/2.0.0``)::

    root/
      mimic-cxr-2.0.0-chexpert.csv.gz   subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,
                                        Enlarged Cardiomediastinum,Fracture,Lung Lesion,Lung Opacity,No Finding,
                                        Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices
                                        (one row per study; 1.0 / 0.0 / -1.0 / blank)
      mimic-cxr-2.0.0-negbio.csv.gz     same columns, NegBio labeler
      mimic-cxr-2.0.0-split.csv.gz      dicom_id,study_id,subject_id,split   (split: train / validate / test)
      mimic-cxr-2.0.0-metadata.csv.gz   dicom_id,subject_id,study_id,PerformedProcedureStepDescription,
                                        ViewPosition,Rows,Columns,StudyDate,StudyTime,...
      files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg
            (p + first two digits of subject_id / p + subject_id / s + study_id / dicom_id.jpg)

The tables may also be uncompressed (``.csv``).

Label policy: the study's labels (CheXpert or NegBio labeler, ``label_source``) apply to each of its images;
uncertain (-1) cells follow ``uncertain`` exactly as for CheXpert (``"zeros"``, ``"ones"``, ``"ignore"``,
``"drop"``); blank = 0; ``No Finding`` is not a class. Studies without a label row are left out (logged).
``frontal_only`` keeps ``ViewPosition`` PA or AP.

Splits: the official split file (``train`` -> training, ``validate`` -> validation, ``test`` -> test); it is
patient-disjoint. Patient = ``p<subject_id>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import (
    apply_uncertain_policy,
    find_table,
    keep_existing,
    make_item,
    read_records,
)
from radlas_monai.data.adapters.chexpert import CHEXPERT_CLASSES, observation_columns
from radlas_monai.data.datalist import make_datalist

__all__ = ["build_datalist", "image_path"]

logger = logging.getLogger(__name__)

_SPLITS = {"train": "training", "validate": "validation", "test": "test"}
_FRONTAL = ("PA", "AP")


def image_path(subject_id: str, study_id: str, dicom_id: str) -> str:
    """``files/p1X/p1XXXXXXX/sYYYYYYYY/<dicom_id>.jpg`` relative to the release root."""
    subject, study = str(int(subject_id)), str(int(study_id))
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.jpg"


def build_datalist(
    root: str | os.PathLike,
    uncertain: str = "zeros",
    frontal_only: bool = True,
    label_source: str = "chexpert",
    class_names: Sequence[str] = CHEXPERT_CLASSES,
    require_images: bool = True,
) -> dict:
    """Build the MIMIC-CXR-JPG datalist with the official split.

    Args:
        root: the release folder (see the module docstring).
        uncertain: ``"zeros"``, ``"ones"``, ``"ignore"`` or ``"drop"``.
        frontal_only: keep ``ViewPosition`` PA / AP only.
        label_source: ``"chexpert"`` or ``"negbio"`` (which labeler's table).
        class_names: classes of ``label`` (harmonized names).
        require_images: leave out images that are not on disk.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: a table is missing.
        ValueError: unknown ``label_source`` / ``uncertain`` or a malformed label cell.
    """
    if label_source not in ("chexpert", "negbio"):
        raise ValueError(f"label_source must be 'chexpert' or 'negbio', got {label_source!r}")
    root = Path(root)
    labels_path = find_table(root, [f"mimic-cxr-2.0.0-{label_source}.csv"], "MIMIC-CXR-JPG")
    label_rows = read_records(labels_path, required=("subject_id", "study_id"))
    columns = observation_columns(list(label_rows[0]) if label_rows else [])
    study_labels = {(int(r["subject_id"]), int(r["study_id"])): r for r in label_rows}
    split_rows = read_records(find_table(root, ["mimic-cxr-2.0.0-split.csv"], "MIMIC-CXR-JPG"),
                              required=("dicom_id", "study_id", "subject_id", "split"))  # fmt: skip
    views = {}
    if frontal_only:
        meta = read_records(find_table(root, ["mimic-cxr-2.0.0-metadata.csv"], "MIMIC-CXR-JPG"),
                            required=("dicom_id", "ViewPosition"))  # fmt: skip
        views = {r["dicom_id"]: r["ViewPosition"] for r in meta}
    splits: dict[str, list[dict]] = {key: [] for key in _SPLITS.values()}
    unlabelled = dropped = 0
    for row in split_rows:
        if frontal_only and views.get(row["dicom_id"], "") not in _FRONTAL:
            continue
        labels = study_labels.get((int(row["subject_id"]), int(row["study_id"])))
        if labels is None:
            unlabelled += 1
            continue
        encoded = apply_uncertain_policy(labels, columns, class_names, uncertain)
        if encoded is None:
            dropped += 1
            continue
        label, findings = encoded
        path = image_path(row["subject_id"], row["study_id"], row["dicom_id"])
        item = make_item(path, findings, class_names, f"p{int(row['subject_id'])}", label=label)
        splits[_SPLITS[row["split"].strip().lower()]].append(item)
    if unlabelled or dropped:
        logger.info("MIMIC-CXR: left out %d images of studies without labels and %d with uncertain labels",
                    unlabelled, dropped)  # fmt: skip
    if require_images:
        splits = {key: keep_existing(items, root, f"MIMIC-CXR {key}") for key, items in splits.items()}
    description = (
        f"MIMIC-CXR-JPG 2.0.0: official split; {label_source} labels, uncertain: {uncertain}; "
        f"frontal only: {frontal_only}"
    )
    return make_datalist("MIMIC-CXR-JPG", description, class_names, splits, uncertain=uncertain)
