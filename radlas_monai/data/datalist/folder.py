"""Datalists from a folder tree: find radiographs, derive pseudonymous patient ids, split by patient."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlas_monai.data.datalist._constants import _PATIENT_DIR, _UID_SUFFIX, DEFAULT_EXTENSIONS, SPLIT_KEYS
from radlas_monai.data.datalist.splits import split_by_patient

logger = logging.getLogger(__name__)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether a file carries the DICOM Part 10 signature (``b"DICM"`` at byte offset 128).

    Args:
        path: the file to sniff; only its first 132 bytes are read.

    Returns:
        ``True`` for a DICOM Part 10 file, ``False`` otherwise (including unreadable files).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def pseudonymize(text: str, prefix: str = "anon-") -> str:
    """A stable pseudonymous id for a string (a folder or file name that might hold a real name).

    Args:
        text: the identifying string.
        prefix: prepended to the hash.

    Returns:
        ``prefix`` + the first 12 hex digits of the SHA-256 of ``text``.
    """
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def make_datalist(
    name: str,
    description: str,
    class_names: Sequence[str],
    splits: dict[str, list[dict]],
    **metadata: Any,
) -> dict:
    """Assemble a datalist dictionary with every split key present (empty lists allowed).

    Args:
        name: dataset name.
        description: what the datalist holds and how it was split.
        class_names: the classes of the multi-hot ``label`` vectors (may be empty).
        splits: lists of items keyed by ``"training"``, ``"validation"``, ``"test"``.
        metadata: further top-level keys (e.g. ``seed``, ``num_folds``).

    Returns:
        The datalist dictionary.

    Raises:
        ValueError: an unknown split key.
    """
    unknown = set(splits) - set(SPLIT_KEYS)
    if unknown:
        raise ValueError(f"unknown split keys {sorted(unknown)}; expected a subset of {list(SPLIT_KEYS)}")
    datalist: dict[str, Any] = {"name": name, "description": description, "class_names": list(class_names)}
    datalist.update(metadata)
    for key in SPLIT_KEYS:
        datalist[key] = list(splits.get(key, []))
    return datalist


# ---------------------------------------------------------------------------------------------------------------------
# folder tree -> datalist


def _matches_extension(name: str, extensions: Sequence[str]) -> bool:
    lower = name.lower()
    return any(lower.endswith(ext.lower()) for ext in extensions)


def _may_be_extensionless_dicom(name: str) -> bool:
    suffix = os.path.splitext(name)[1]
    return name.upper() != "DICOMDIR" and (suffix == "" or bool(_UID_SUFFIX.match(suffix)))


def _walk_images(root: Path, recursive: bool, extensions: Sequence[str], sniff_dicom: bool) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            full = os.path.join(folder, name)
            if _matches_extension(name, extensions) or (
                sniff_dicom and _may_be_extensionless_dicom(name) and is_dicom_file(full)
            ):
                found.append(Path(os.path.relpath(full, root)).as_posix())
    return sorted(found)


def _folder_patient(relpath: str, patient_level: int | str | None) -> str:
    dirs = relpath.split("/")[:-1]
    if patient_level == "auto":
        matches = [d for d in dirs if _PATIENT_DIR.match(d)]
        return matches[-1] if matches else pseudonymize(relpath)
    if patient_level is None:
        return pseudonymize(relpath)
    if isinstance(patient_level, int) and not isinstance(patient_level, bool) and patient_level >= 0:
        return pseudonymize("/".join(dirs[: patient_level + 1])) if len(dirs) > patient_level else pseudonymize(relpath)
    raise ValueError(f"patient_level must be 'auto', None or a folder depth >= 0, got {patient_level!r}")


def datalist_from_folder(
    root: str | os.PathLike,
    recursive: bool = True,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    include_extensionless_dicom: bool = True,
    split: Sequence[float] = (0.9, 0.1, 0.0),
    seed: int = 0,
    patient_level: int | str | None = "auto",
    name: str | None = None,
) -> dict:
    """Datalist of every radiograph under a folder, for unlabelled (self-supervised) pretraining.

    Files are matched by extension (case-insensitive; ``.nii.gz`` included). DICOM files often have no
    suffix (or a UID-like numeric one such as ``1.2.840.113619.2.55.3``): with ``include_extensionless_dicom``
    such files are kept when they carry ``DICM`` at byte 128 (``DICOMDIR`` is never an image). Hidden files
    and folders are skipped; the walk is sorted, so the result is the same on every file system.

    The patient of each image (used for the split) comes from the folder layout, never from DICOM tags:

    * ``patient_level="auto"``: the deepest folder named like a patient id (``patient00001``, ``p10000032``,
      ``subject_12``, ``case-7``), kept verbatim; images without one are their own patient;
    * ``patient_level=k`` (int): the folder at depth ``k`` below ``root`` (0 = first sub-folder) groups the
      images; its name is pseudonymized (``anon-<hash>``) because folder names may hold real names;
    * ``patient_level=None``: every image is its own patient.

    Args:
        root: the folder to scan.
        recursive: descend into sub-folders.
        extensions: file suffixes to keep.
        include_extensionless_dicom: also keep suffix-less files with the DICOM signature.
        split: fractions of (training, validation, test), by patient.
        seed: seed of the patient split.
        patient_level: how to derive the patient, see above.
        name: dataset name; defaults to the folder name.

    Returns:
        A datalist whose items are ``{"image": <path relative to root>, "patient": <id>}``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: bad ``split`` or ``patient_level``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"datalist_from_folder: {root} is not a folder")
    images = _walk_images(root, recursive, tuple(extensions), include_extensionless_dicom)
    items = [{"image": rel, "patient": _folder_patient(rel, patient_level)} for rel in images]
    logger.info("found %d radiographs of %d patients under %s", len(items), len({i["patient"] for i in items}), root)
    if not items:
        logger.warning("no radiographs with extensions %s found under %s", list(extensions), root)
    splits = split_by_patient(items, split, seed=seed)
    description = f"unlabelled radiographs under {root.name}; split {tuple(split)} by patient, seed {seed}"
    return make_datalist(name or root.resolve().name, description, [], splits, seed=seed)


# ---------------------------------------------------------------------------------------------------------------------
# CSV -> datalist
