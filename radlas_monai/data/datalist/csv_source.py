"""Datalists from a CSV of labels and annotations (one row per image or per finding)."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlas_monai.data.datalist.folder import make_datalist, pseudonymize
from radlas_monai.data.datalist.splits import split_by_patient
from radlas_monai.data.vocabulary import NO_FINDING, PATHOLOGIES, harmonize_finding

logger = logging.getLogger(__name__)


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
