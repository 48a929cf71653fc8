"""CheXpert -> datalist (Irvin et al., "CheXpert", AAAI 2019).

Real file layout (``CheXpert-v1.0`` or ``CheXpert-v1.0-small``; ``root`` is that folder)::

    root/
      train.csv   Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,
                  Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,
                  Pleural Effusion,Pleural Other,Fracture,Support Devices
      valid.csv   same columns (radiologist-labelled, no uncertain or blank cells)
      train/patient00001/study1/view1_frontal.jpg
      valid/patient64541/study1/view1_frontal.jpg

``Path`` starts with the release folder name (``CheXpert-v1.0-small/train/patient00001/...``); the part from
``train/`` or ``valid/`` on is used, relative to ``root``.

Label policy: observation cells are 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned,
counted as 0). Uncertain cells follow ``uncertain``: ``"zeros"`` (U-Zeros), ``"ones"`` (U-Ones), ``"ignore"``
(kept as -1 in ``label`` for a masked loss; not listed in ``findings``) or ``"drop"`` (images with any uncertain
class in ``class_names`` are left out). Names are harmonized (``Pleural Effusion`` -> ``Effusion``,
``Pleural Other`` -> ``Pleural_Thickening``); ``No Finding`` is not a class (an all-zero label means normal).

Splits: ``train.csv`` is split by patient (``patientXXXXX`` from the path) into training / validation;
the official ``valid.csv`` (200 studies, radiologist consensus) becomes ``"test"``, as is usual since the
official test set is held out.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import (
    apply_uncertain_policy,
    find_table,
    keep_existing,
    make_item,
    read_records,
)
from radlas_monai.data.datalist import make_datalist, split_by_patient
from radlas_monai.data.vocabulary import NO_FINDING, harmonize_finding

__all__ = ["CHEXPERT_OBSERVATIONS", "CHEXPERT_CLASSES", "build_datalist", "image_path_from_csv"]

logger = logging.getLogger(__name__)

#: The 14 observation columns of the CheXpert labeler, in file order.
CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)  # fmt: skip
#: The 13 findings (harmonized, ``No Finding`` excluded): the default classes.
CHEXPERT_CLASSES: tuple[str, ...] = tuple(
    harmonize_finding(n) for n in CHEXPERT_OBSERVATIONS if harmonize_finding(n) != NO_FINDING
)
_PATIENT = re.compile(r"(patient\d+)")
_SPLIT_FOLDERS = ("train", "valid", "test")


def image_path_from_csv(path: str) -> str:
    """``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg`` -> ``train/patient00001/...``."""
    parts = Path(path.strip()).as_posix().split("/")
    for index, part in enumerate(parts):
        if part in _SPLIT_FOLDERS:
            return "/".join(parts[index:])
    return "/".join(parts)


def observation_columns(header: Sequence[str]) -> dict[str, str]:
    """Observation column -> harmonized class name, for the observation columns present (``No Finding`` out)."""
    return {c: harmonize_finding(c) for c in CHEXPERT_OBSERVATIONS if c in header and c != "No Finding"}


def _items(csv_path: Path, class_names: Sequence[str], uncertain: str, frontal_only: bool) -> list[dict]:
    records = read_records(csv_path, required=("Path",))
    columns = observation_columns(list(records[0]) if records else [])
    items, dropped = [], 0
    for record in records:
        if frontal_only and record.get("Frontal/Lateral", "Frontal") != "Frontal":
            continue
        encoded = apply_uncertain_policy(record, columns, class_names, uncertain)
        if encoded is None:
            dropped += 1
            continue
        label, findings = encoded
        image = image_path_from_csv(record["Path"])
        match = _PATIENT.search(image)
        patient = match.group(1) if match else image
        items.append(make_item(image, findings, class_names, patient, label=label))
    if dropped:
        logger.info("CheXpert %s: %d images with uncertain labels dropped (uncertain='drop')", csv_path.name, dropped)
    return items


def build_datalist(
    root: str | os.PathLike,
    uncertain: str = "zeros",
    frontal_only: bool = True,
    validation_fraction: float = 0.1,
    seed: int = 0,
    class_names: Sequence[str] = CHEXPERT_CLASSES,
    require_images: bool = True,
) -> dict:
    """Build the CheXpert datalist.

    Args:
        root: the release folder holding ``train.csv`` and ``valid.csv``.
        uncertain: ``"zeros"``, ``"ones"``, ``"ignore"`` or ``"drop"`` (see the module docstring).
        frontal_only: keep frontal views only (``Frontal/Lateral == "Frontal"``).
        validation_fraction: fraction of ``train.csv`` images (by patient) for ``"validation"``.
        seed: seed of the patient split.
        class_names: classes of ``label`` (harmonized names).
        require_images: leave out rows whose image is not on disk.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: ``train.csv`` is missing.
        ValueError: unknown ``uncertain`` policy or a malformed label cell.
    """
    root = Path(root)
    train = _items(find_table(root, ["train.csv"], "CheXpert"), class_names, uncertain, frontal_only)
    valid_csv = root / "valid.csv"
    test = _items(valid_csv, class_names, uncertain, frontal_only) if valid_csv.is_file() else []
    if require_images:
        train, test = keep_existing(train, root, "CheXpert train.csv"), keep_existing(test, root, "CheXpert valid.csv")
    split = split_by_patient(train, (1.0 - validation_fraction, validation_fraction), seed=seed)
    description = (
        f"CheXpert: train.csv split by patient ({1.0 - validation_fraction:g}/{validation_fraction:g}, seed {seed}); "
        f"official valid.csv as test; uncertain labels: {uncertain}; frontal only: {frontal_only}"
    )
    splits = {"training": split["training"], "validation": split["validation"], "test": test}
    return make_datalist("CheXpert", description, class_names, splits, seed=seed, uncertain=uncertain)
