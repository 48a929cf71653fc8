"""Constants shared by the datalist builders, splitters and loaders."""

from __future__ import annotations

import re

DEFAULT_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")
#: The split keys of a datalist, in order.
SPLIT_KEYS: tuple[str, ...] = ("training", "validation", "test")
#: Item keys that hold file paths (resolved against the JSON's folder on load, rebased on write).
PATH_KEYS: tuple[str, ...] = ("image", "mask", "lung_mask")
#: Folder names that are patient ids in common layouts (CheXpert ``patient00001``, MIMIC ``p10000032``, ...).
_PATIENT_DIR = re.compile(r"^(patient|pat|subject|sub|case|p)[-_]?\d+$", re.IGNORECASE)
_UID_SUFFIX = re.compile(r"^\.\d+$")  # "1.2.840.113619.2.55.3" has the suffix ".3": still no real extension
