"""MONAI decathlon-style datalists: build them from a folder tree or a CSV, split them by patient, write and load them.

A datalist is the JSON every bundle reads with :func:`monai.data.load_decathlon_datalist`::

    {"name": ..., "description": ..., "class_names": [...],
     "training": [{"image": "p1/a.dcm", "label": [0, 1], "findings": ["Nodule"], "patient": "p1", ...}, ...],
     "validation": [...], "test": [...]}

Image and mask paths are relative to the JSON's folder (or absolute). The builders here return paths relative
to the dataset ``root``; :func:`write_datalist` rebases them when the JSON is written somewhere else.

Splits are always made by **patient**, never by image: a patient's images all land in one split, so that no
anatomy leaks from training into evaluation. All randomness comes from a local ``numpy.random.default_rng(seed)``
over the *sorted* patient ids, so a split depends on the seed and the set of patients only, not on item order.

Example::

    from radlas_monai.data.datalist import datalist_from_folder, load_datalist, write_datalist

    datalist = datalist_from_folder("/data/cxr", split=(0.9, 0.1, 0.0))
    write_datalist(datalist, "/data/cxr/datalist.json")
    train_items = load_datalist("/data/cxr/datalist.json", "training")
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlas_monai.data.vocabulary import NO_FINDING, PATHOLOGIES, harmonize_finding

__all__ = [
    "DEFAULT_EXTENSIONS",
    "SPLIT_KEYS",
    "PATH_KEYS",
    "is_dicom_file",
    "pseudonymize",
    "make_datalist",
    "datalist_from_folder",
    "datalist_from_csv",
    "split_by_patient",
    "kfold_by_patient",
    "sample_label_fraction",
    "write_datalist",
    "load_datalist",
]

logger = logging.getLogger(__name__)

DEFAULT_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")
#: The split keys of a datalist, in order.
SPLIT_KEYS: tuple[str, ...] = ("training", "validation", "test")
#: Item keys that hold file paths (resolved against the JSON's folder on load, rebased on write).
PATH_KEYS: tuple[str, ...] = ("image", "mask", "lung_mask")
#: Folder names that are patient ids in common layouts (CheXpert ``patient00001``, MIMIC ``p10000032``, ...).
_PATIENT_DIR = re.compile(r"^(patient|pat|subject|sub|case|p)[-_]?\d+$", re.IGNORECASE)
_UID_SUFFIX = re.compile(r"^\.\d+$")  # "1.2.840.113619.2.55.3" has the suffix ".3": still no real extension


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


def _canonical_or_raw(name: str) -> str:
    try:
        return harmonize_finding(name)
    except KeyError:
        logger.warning("finding %r is not in the project vocabulary; kept as spelled", name)
        return name.strip()


def _parse_label_value(value: str, column: str, row_number: int) -> int:
    text = (value or "").strip().lower()
    if text in ("", "0", "0.0", "false", "no", "nan"):
        return 0
    if text in ("1", "1.0", "true", "yes"):
        return 1
    if text in ("-1", "-1.0"):
        return -1
    raise ValueError(f"row {row_number}: column {column!r} holds {value!r}; expected 1, 0, -1 or blank")


def _split_findings(text: str, separator: str | None) -> list[str]:
    text = (text or "").strip()
    if not text:
        return []
    sep = separator or ("|" if "|" in text else ",")
    return [part.strip() for part in text.split(sep) if part.strip()]


def _floats(row: dict, columns: Sequence[str]) -> list[float] | None:
    values = [(row.get(c) or "").strip() for c in columns]
    if not any(values):
        return None
    if not all(values):
        raise ValueError(f"columns {list(columns)} are partly blank: {values}")
    return [float(v) for v in values]


def _check_columns(header: Sequence[str], wanted: dict[str, Sequence[str] | str | None], csv_path: Path) -> None:
    missing = []
    for columns in wanted.values():
        if columns is None:
            continue
        missing += [c for c in ([columns] if isinstance(columns, str) else columns) if c not in header]
    if missing:
        raise KeyError(f"{csv_path}: missing columns {missing}; the header is {list(header)}")


def _row_annotations(row: dict, opts: dict, row_number: int) -> dict:
    """Findings, labels, boxes and centres of one CSV row."""
    out: dict[str, Any] = {"findings": [], "labels": {}, "boxes": [], "box_findings": [], "centers": [], "radii": []}
    if opts["findings_column"]:
        names = _split_findings(row.get(opts["findings_column"], ""), opts["findings_separator"])
        out["findings"] = [n for n in (_canonical_or_raw(x) for x in names) if n != NO_FINDING]
    for column, class_name in opts["label_map"].items():
        out["labels"][class_name] = _parse_label_value(row.get(column, ""), column, row_number)
    if opts["box_columns"]:
        box = _floats(row, opts["box_columns"])
        if box is not None:
            if opts["box_format"] == "xywh":
                box = [box[0], box[1], box[0] + box[2], box[1] + box[3]]
            out["boxes"].append(box)
            finding = (row.get(opts["box_finding_column"]) or "").strip() if opts["box_finding_column"] else ""
            if finding:
                out["box_findings"].append(_canonical_or_raw(finding))
            else:
                out["box_findings"].append(out["findings"][0] if len(out["findings"]) == 1 else None)
    if opts["center_columns"]:
        center = _floats(row, opts["center_columns"])
        if center is not None:
            out["centers"].append(center)
            radius = (row.get(opts["radius_column"]) or "").strip() if opts["radius_column"] else ""
            out["radii"].append(float(radius) if radius else None)
    return out


def _combine_labels(old: int | None, new: int) -> int:
    """Positive wins over uncertain, uncertain over negative (rows of one image are merged)."""
    if old is None:
        return new
    return 1 if 1 in (old, new) else (-1 if -1 in (old, new) else 0)


def _merge_row(item: dict, ann: dict) -> None:
    for name in ann["findings"]:
        if name not in item["findings"]:
            item["findings"].append(name)
    for name, value in ann["labels"].items():
        item["_labels"][name] = _combine_labels(item["_labels"].get(name), value)
    for key in ("boxes", "box_findings", "centers", "radii"):
        item.setdefault(key, []).extend(ann[key])


def _finish_csv_item(item: dict, class_names: list[str]) -> dict:
    labels = item.pop("_labels")
    for name, value in labels.items():
        if value == 1 and name not in item["findings"]:
            item["findings"].append(name)
    item["label"] = [labels.get(c, int(c in item["findings"])) for c in class_names]
    for key in ("boxes", "centers"):
        if not item.get(key):
            item.pop(key, None)
    if "boxes" not in item or None in item.get("box_findings", [None]):
        item.pop("box_findings", None)
    if "centers" not in item or None in item.get("radii", [None]):
        item.pop("radii", None)
    return item


def _default_class_names(items: list[dict], label_names: list[str]) -> list[str]:
    if label_names:
        return label_names
    seen = {f for item in items for f in item["findings"]}
    known = [p for p in PATHOLOGIES if p in seen]
    return known + sorted(seen - set(known))


def datalist_from_csv(
    csv_path: str | os.PathLike,
    image_column: str = "image",
    label_columns: Sequence[str] | None = None,
    findings_column: str | None = None,
    *,
    findings_separator: str | None = None,
    box_columns: Sequence[str] | None = None,
    box_format: str = "xyxy",
    box_finding_column: str | None = None,
    center_columns: Sequence[str] | None = None,
    radius_column: str | None = None,
    mask_column: str | None = None,
    lung_mask_column: str | None = None,
    patient_column: str | None = None,
    spacing_columns: Sequence[str] | None = None,
    image_root: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    name: str | None = None,
) -> dict:
    """Datalist from a CSV with one row per image, or one row per annotation (rows of an image are merged).

    Labels come either from ``label_columns`` (one column per class holding 1 / 0 / blank, or -1 for
    uncertain, which is kept as -1 in ``label``) or from ``findings_column`` (names separated by ``|`` or ``,``,
    auto-detected unless ``findings_separator`` is given; ``No Finding`` means none). Names are mapped with
    :func:`~radlas_monai.data.vocabulary.harmonize_finding`; names outside the vocabulary are kept as spelled
    (with a warning). Rows repeating an image add their boxes / centres and findings to it.

    Args:
        csv_path: the CSV file (UTF-8, optional BOM).
        image_column: column with the image path, relative to ``image_root`` or absolute.
        label_columns: per-class label columns; the class names are their harmonized names.
        findings_column: column with finding names.
        findings_separator: ``"|"`` or ``","``; ``None`` detects it per cell.
        box_columns: four columns of a box, ``(x0, y0, x1, y1)`` or ``(x, y, w, h)`` (see ``box_format``);
            blank cells mean "no box on this row".
        box_format: ``"xyxy"`` or ``"xywh"``.
        box_finding_column: column naming the finding of each box; without it a box takes the row's only
            finding, and ``box_findings`` is omitted when that is ambiguous.
        center_columns: ``(x, y)`` columns of a lesion centre.
        radius_column: radius column (pixels) matching ``center_columns``.
        mask_column: column with a lesion mask path (relative like images).
        lung_mask_column: column with a lung mask path.
        patient_column: column with a pseudonymous patient id; without it each image is its own patient.
        spacing_columns: ``(row_mm, col_mm)`` columns.
        image_root: folder the paths are relative to; defaults to the CSV's folder.
        class_names: classes of ``label``; default: the label columns, else the findings seen, in
            vocabulary order.
        split: fractions of (training, validation, test), by patient.
        seed: seed of the split.
        name: dataset name; defaults to the CSV's stem.

    Returns:
        The datalist; paths stay relative to ``image_root`` (pass ``root=image_root`` to
        :func:`write_datalist` when the JSON goes elsewhere).

    Raises:
        FileNotFoundError: no such CSV.
        KeyError: a named column is missing (the message lists the header).
        ValueError: bad ``box_format`` or an unparsable cell (the message names the row).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"datalist_from_csv: no CSV file at {csv_path}")
    if box_format not in ("xyxy", "xywh"):
        raise ValueError(f"box_format must be 'xyxy' or 'xywh', got {box_format!r}")
    for arg, columns, size in (("box_columns", box_columns, 4), ("center_columns", center_columns, 2)):
        if columns is not None and len(columns) != size:
            raise ValueError(f"{arg} needs {size} column names, got {list(columns)}")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h for h in (reader.fieldnames or [])]
        rows = list(reader)
    wanted = {
        "image": image_column, "labels": label_columns, "findings": findings_column, "boxes": box_columns,
        "box_finding": box_finding_column, "centers": center_columns, "radius": radius_column, "mask": mask_column,
        "lung": lung_mask_column, "patient": patient_column, "spacing": spacing_columns,
    }  # fmt: skip
    _check_columns(header, wanted, csv_path)
    label_map = {c: _canonical_or_raw(c) for c in (label_columns or [])}
    opts = {
        "findings_column": findings_column, "findings_separator": findings_separator, "label_map": label_map,
        "box_columns": box_columns, "box_format": box_format, "box_finding_column": box_finding_column,
        "center_columns": center_columns, "radius_column": radius_column,
    }  # fmt: skip
    by_image: dict[str, dict] = {}
    for number, row in enumerate(rows, start=2):
        image = (row.get(image_column) or "").strip()
        if not image:
            raise ValueError(f"{csv_path}: row {number} has an empty {image_column!r} cell")
        try:
            ann = _row_annotations(row, opts, number)
        except ValueError as err:
            raise ValueError(f"{csv_path}: row {number}: {err}") from err
        item = by_image.get(image)
        if item is None:
            item = by_image[image] = {"image": Path(image).as_posix(), "findings": [], "_labels": {}}
            for key, column in (("mask", mask_column), ("lung_mask", lung_mask_column)):
                if column and (row.get(column) or "").strip():
                    item[key] = Path(row[column].strip()).as_posix()
            patient = (row.get(patient_column) or "").strip() if patient_column else ""
            item["patient"] = patient or pseudonymize(item["image"])
            if spacing_columns:
                spacing = _floats(row, spacing_columns)
                if spacing is not None:
                    item["spacing"] = spacing
        _merge_row(item, ann)
    items = list(by_image.values())
    classes = list(class_names) if class_names is not None else _default_class_names(items, list(label_map.values()))
    items = [_finish_csv_item(item, classes) for item in items]
    root = Path(image_root) if image_root is not None else csv_path.parent
    description = f"{csv_path.name} (images relative to {root.name}); split {tuple(split)} by patient, seed {seed}"
    return make_datalist(
        name or csv_path.stem, description, classes, split_by_patient(items, split, seed=seed), seed=seed
    )


# ---------------------------------------------------------------------------------------------------------------------
# splitting and sampling by patient


def _patient_groups(items: Sequence[dict]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "image" not in item:
            raise ValueError(f"item {index} is not a datalist item with an 'image' key: {item!r}")
        patient = item.get("patient")
        key = str(patient) if patient not in (None, "") else f"image:{item['image']}"
        groups.setdefault(key, []).append(index)
    return groups


def _shuffled_patients(groups: dict[str, list[int]], seed: int) -> list[str]:
    patients = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(patients))
    return [patients[i] for i in order]


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    values = [float(f) for f in fractions]
    if not 1 <= len(values) <= 3 or any(not math.isfinite(f) or f < 0 for f in values):
        raise ValueError(f"fractions must be 1 to 3 non-negative numbers (training, validation, test), got {fractions}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(values):g})")
    return values + [0.0] * (3 - len(values))


def _assign_groups(groups: dict[str, list[int]], targets: Sequence[float], seed: int) -> list[list[str]]:
    """Greedy bin filling: largest patients first (ties in seeded random order), each to the bin most short
    of its target (ties: the bin most short relative to its target, then the first)."""
    patients = sorted(_shuffled_patients(groups, seed), key=lambda p: -len(groups[p]))  # stable: keeps the shuffle
    bins: list[list[str]] = [[] for _ in targets]
    filled = [0] * len(targets)
    for patient in patients:

        def shortfall(k: int) -> tuple[float, float, int]:
            deficit = targets[k] - filled[k]
            return (round(deficit, 9), deficit / targets[k] if targets[k] > 0 else -math.inf, -k)

        best = max(range(len(targets)), key=shortfall)
        bins[best].append(patient)
        filled[best] += len(groups[patient])
    return bins


def split_by_patient(
    items: Sequence[dict], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, list[dict]]:
    """Split datalist items into training / validation / test so that no patient is in two splits.

    Patients (``item["patient"]``; an item without one is its own patient) are shuffled with
    ``numpy.random.default_rng(seed)`` from their sorted ids, then assigned largest-first to the split that is
    furthest below its target number of *images*, so split sizes are as close to the fractions as the patient
    grouping allows. A split with fraction 0 stays empty. Items keep their input order inside a split.

    Args:
        items: datalist items (dicts with ``"image"`` and usually ``"patient"``).
        fractions: fractions of (training, validation, test); 1 to 3 values summing to 1.
        seed: seed of the shuffle.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}`` (the same dict objects as ``items``).

    Raises:
        ValueError: bad fractions or an item without ``"image"``.
    """
    values = _check_fractions(fractions)
    groups = _patient_groups(items)
    total = len(items)
    bins = _assign_groups(groups, [f * total for f in values], seed)
    which = {index: k for k, patients in enumerate(bins) for p in patients for index in groups[p]}
    return {key: [item for i, item in enumerate(items) if which[i] == k] for k, key in enumerate(SPLIT_KEYS)}


def kfold_by_patient(items: Sequence[dict], num_folds: int = 5, seed: int = 0) -> list[list[dict]]:
    """Partition items into ``num_folds`` folds of (nearly) equal image counts, no patient in two folds.

    Args:
        items: datalist items.
        num_folds: number of folds (>= 2).
        seed: seed of the patient shuffle.

    Returns:
        ``num_folds`` lists of items, each in input order.

    Raises:
        ValueError: ``num_folds < 2`` or more folds than patients.
    """
    groups = _patient_groups(items)
    if int(num_folds) < 2 or int(num_folds) > len(groups):
        raise ValueError(f"num_folds must be in 2..{len(groups)} (the number of patients), got {num_folds}")
    bins = _assign_groups(groups, [len(items) / num_folds] * int(num_folds), seed)
    which = {index: k for k, patients in enumerate(bins) for p in patients for index in groups[p]}
    return [[item for i, item in enumerate(items) if which[i] == k] for k in range(int(num_folds))]


def sample_label_fraction(items: Sequence[dict], fraction: float, seed: int = 0) -> list[dict]:
    """Keep the images of a random fraction of the *patients* (label-efficiency experiments: 1 %, 10 %, 100 %).

    The patients are shuffled once from their sorted ids with ``default_rng(seed)`` and the first
    ``max(1, round(fraction * n_patients))`` are kept, so with one seed a smaller fraction is a subset of a
    larger one. All images of a kept patient are kept, in input order.

    Args:
        items: datalist items.
        fraction: in ``(0, 1]``; 1.0 returns every item.
        seed: seed of the patient shuffle.

    Returns:
        The kept items.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]``.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0 or not items:
        return list(items)
    groups = _patient_groups(items)
    count = max(1, int(math.floor(float(fraction) * len(groups) + 0.5)))
    kept = {index for p in _shuffled_patients(groups, seed)[:count] for index in groups[p]}
    return [item for i, item in enumerate(items) if i in kept]


# ---------------------------------------------------------------------------------------------------------------------
# writing and loading


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"datalist value of type {type(value).__name__} is not JSON serializable: {value!r}")


def _rebase(item: dict, root: Path, json_dir: Path) -> dict:
    """Rewrite relative paths from ``root`` to ``json_dir``; absolute when the two share only the file-system root."""
    unrelated = os.path.commonpath([root, json_dir]) == root.anchor

    def moved(value: Any) -> Any:
        if isinstance(value, list):
            return [moved(v) for v in value] if all(isinstance(v, str | os.PathLike) for v in value) else value
        if not isinstance(value, str | os.PathLike) or os.path.isabs(value):
            return value
        target = os.path.normpath(root / value)
        return Path(target if unrelated else os.path.relpath(target, json_dir)).as_posix()

    for key in (*PATH_KEYS, "label"):
        if key in item:
            item[key] = moved(item[key])
    return item


def write_datalist(datalist: dict, path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write a datalist as pretty JSON, atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        datalist: the datalist dictionary (see the module docstring); it is not modified.
        path: destination ``.json``; parent folders are created.
        root: the folder the relative paths of ``datalist`` are relative to (the dataset root of a builder);
            when given and different from the JSON's folder, relative ``image`` / ``mask`` / ``lung_mask``
            paths are rewritten relative to the JSON's folder (absolute when the two folders share nothing
            but the file-system root). ``None``: paths are written unchanged.

    Returns:
        The written path.

    Raises:
        ValueError: ``datalist`` is not a dict, a split is not a list, or an item lacks ``"image"``.
    """
    if not isinstance(datalist, dict):
        raise ValueError(f"write_datalist: expected a dict, got {type(datalist).__name__}")
    data = copy.deepcopy(datalist)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    json_dir = path.parent.resolve()
    for key in SPLIT_KEYS:
        split_items = data.get(key, [])
        if not isinstance(split_items, list):
            raise ValueError(f"write_datalist: split {key!r} must be a list, got {type(split_items).__name__}")
        for index, item in enumerate(split_items):
            if not isinstance(item, dict) or "image" not in item:
                raise ValueError(f"write_datalist: {key}[{index}] is not an item with an 'image' key: {item!r}")
            if root is not None and Path(root).resolve() != json_dir:
                _rebase(item, Path(root).resolve(), json_dir)
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise
    logger.info("wrote %s (%s)", path, ", ".join(f"{k}: {len(data.get(k, []))}" for k in SPLIT_KEYS))
    return path


def load_datalist(path: str | os.PathLike, split: str = "training") -> list[dict]:
    """Load one split of a datalist with :func:`monai.data.load_decathlon_datalist`, paths made absolute.

    ``base_dir`` is the JSON's folder. Path keys (``image``, ``mask``, ``lung_mask``, a string ``label``) are
    always joined with it; every other key (``patient``, ``findings``, ...) is returned exactly as written --
    MONAI's loader would otherwise turn a patient id into a path whenever a folder of that name exists next
    to the JSON. An empty split returns ``[]`` (MONAI's loader fails on an empty ``"test"`` list).

    Args:
        path: the datalist JSON.
        split: ``"training"``, ``"validation"``, ``"test"`` or any other list key of the file.

    Returns:
        The items of the split.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the split is absent (the message names the file and its available splits) or is not a list.
    """
    from monai.data import load_decathlon_datalist

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_datalist: no datalist file at {path}")
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    available = (
        [k for k, v in raw.items() if isinstance(v, list) and k != "class_names"] if isinstance(raw, dict) else []
    )
    if not isinstance(raw, dict) or split not in raw:
        raise ValueError(f"load_datalist: {path} has no split {split!r}; available splits: {available}")
    if not isinstance(raw[split], list):
        raise ValueError(f"load_datalist: {path}: {split!r} is a {type(raw[split]).__name__}, not a list of items")
    if not raw[split]:
        return []
    base_dir = path.parent.resolve()
    loaded = load_decathlon_datalist(path, is_segmentation=True, data_list_key=split, base_dir=base_dir)
    originals = [item if isinstance(item, dict) else {"image": item} for item in raw[split]]
    if len(loaded) != len(originals):  # pragma: no cover - MONAI returns one dict per entry
        raise ValueError(f"load_datalist: {path}: MONAI returned {len(loaded)} items for {len(originals)} entries")

    def resolved(value: Any) -> Any:
        if isinstance(value, str):
            return os.path.normpath(os.path.join(base_dir, value))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [resolved(v) for v in value]  # multi-channel input: a list of files
        return value

    return [{k: resolved(v) if k in (*PATH_KEYS, "label") else v for k, v in item.items()} for item in originals]
