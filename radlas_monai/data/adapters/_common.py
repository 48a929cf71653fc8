"""Shared pieces of the dataset adapters: table reading, label policies, item assembly."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from radlas_monai.data.datalist import kfold_by_patient, split_by_patient
from radlas_monai.data.vocabulary import NO_FINDING, harmonize_finding

__all__ = [
    "UNCERTAIN_POLICIES",
    "find_table",
    "read_table",
    "read_records",
    "harmonized",
    "make_item",
    "apply_uncertain_policy",
    "keep_existing",
    "parse_float",
    "split_or_fold",
]

logger = logging.getLogger(__name__)

#: How an uncertain (-1) CheXpert-style label is handled: mapped to 0, to 1, kept as -1 (for a masked
#: loss), or the whole image dropped.
UNCERTAIN_POLICIES: tuple[str, ...] = ("zeros", "ones", "ignore", "drop")


def find_table(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``names`` (each also tried with ``.gz``) under ``root``.

    Raises:
        FileNotFoundError: none exists; the message names ``what`` and the candidates.
    """
    for name in names:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{what}: none of {list(names)} (or .gz) found under {root}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (cells stripped of surrounding spaces) and raw rows of a CSV (plain or gzip); blank lines dropped."""
    with _open_text(path) as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: empty table, expected a header row")
    return [cell.strip() for cell in rows[0]], rows[1:]


def read_records(path: Path, required: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV as dicts keyed by the stripped header, values stripped.

    Raises:
        KeyError: a ``required`` column is missing (the message lists the header).
    """
    header, rows = read_table(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise KeyError(f"{path}: missing columns {missing}; the header is {header}")
    return [{h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)} for row in rows]


def harmonized(names: Iterable[str]) -> list[str]:
    """Harmonized finding names, without :data:`NO_FINDING`, duplicates removed, first-seen order kept."""
    out: list[str] = []
    for name in names:
        canonical = harmonize_finding(name)
        if canonical != NO_FINDING and canonical not in out:
            out.append(canonical)
    return out


def make_item(
    image: str,
    findings: Sequence[str],
    class_names: Sequence[str],
    patient: str,
    label: Sequence[int] | None = None,
    **extra: Any,
) -> dict:
    """A datalist item; keys whose value is ``None`` or an empty list are left out.

    Args:
        image: path relative to the dataset root (POSIX separators).
        findings: harmonized finding names present.
        class_names: classes of the multi-hot ``label``.
        patient: pseudonymous patient id.
        label: an explicit label vector (e.g. with -1 for uncertain); default: multi-hot of ``findings``.
        extra: ``boxes``, ``box_findings``, ``centers``, ``radii``, ``mask``, ``lung_mask``, ``spacing``, ...
    """
    item: dict[str, Any] = {
        "image": Path(image).as_posix(),
        "label": list(label) if label is not None else [int(c in findings) for c in class_names],
        "findings": list(findings),
        "patient": str(patient),
    }
    for key, value in extra.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        item[key] = value
    return item


def parse_float(text: str) -> float | None:
    """A float from a CSV cell; blank or ``nan`` -> ``None``."""
    text = (text or "").strip()
    if not text or text.lower() == "nan":
        return None
    return float(text)


def apply_uncertain_policy(
    values: dict[str, str], columns: dict[str, str], class_names: Sequence[str], policy: str
) -> tuple[list[int], list[str]] | None:
    """Label vector and findings of a CheXpert-style row: 1.0 positive, 0.0 negative, -1.0 uncertain, blank unmentioned.

    Args:
        values: the row, keyed by column name.
        columns: dataset column name -> harmonized class name, for the observation columns.
        class_names: classes of the label vector (harmonized names).
        policy: ``"zeros"`` (uncertain -> 0), ``"ones"`` (-> 1, the U-Ones policy of Irvin et al. 2019),
            ``"ignore"`` (-> -1 in ``label``, for a loss that masks it; not a finding), ``"drop"`` (the row is
            dropped if any class in ``class_names`` is uncertain).

    Returns:
        ``(label, findings)``, or ``None`` when the row is dropped. Blank cells count as 0.

    Raises:
        ValueError: unknown policy or a cell that is not 1 / 0 / -1 / blank.
    """
    if policy not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain policy must be one of {UNCERTAIN_POLICIES}, got {policy!r}")
    state: dict[str, int] = {}
    for column, name in columns.items():
        text = (values.get(column) or "").strip()
        value = 0 if text == "" or text.lower() == "nan" else int(float(text))
        if value not in (-1, 0, 1):
            raise ValueError(f"column {column!r} holds {text!r}; expected 1, 0, -1 or blank")
        if value == -1:
            value = {"zeros": 0, "ones": 1, "ignore": -1, "drop": -1}[policy]
        old = state.get(name)
        state[name] = value if old is None else (1 if 1 in (old, value) else (-1 if -1 in (old, value) else 0))
    if policy == "drop" and any(state.get(c) == -1 for c in class_names):
        return None
    findings = [name for name, value in state.items() if value == 1]
    return [state.get(c, 0) for c in class_names], findings


def keep_existing(items: list[dict], root: Path, what: str) -> list[dict]:
    """Drop items whose image file is missing (a partial download), logging how many and an example."""
    kept = [item for item in items if os.path.isfile(root / item["image"])]
    missing = len(items) - len(kept)
    if missing:
        example = next(item["image"] for item in items if not os.path.isfile(root / item["image"]))
        logger.warning("%s: %d of %d listed images are missing under %s (e.g. %s); left out", what, missing,
                       len(items), root, example)  # fmt: skip
    return kept


def split_or_fold(
    items: list[dict], split: Sequence[float], seed: int, fold: int | None, num_folds: int | None
) -> dict[str, list[dict]]:
    """A patient split, or with ``fold`` given a cross-validation split (held-out fold -> ``"validation"``).

    With ``fold``, the items are partitioned by patient into ``num_folds`` folds
    (:func:`~radlas_monai.data.datalist.kfold_by_patient`, same ``seed`` -> same folds for every ``fold``),
    each item gets its ``"fold"`` index, fold ``fold`` is the validation split, the others are training
    and the test split is empty.

    Raises:
        ValueError: ``fold`` outside ``0..num_folds-1`` or ``num_folds`` missing.
    """
    if fold is None:
        return split_by_patient(items, split, seed=seed)
    if num_folds is None or not 0 <= int(fold) < int(num_folds):
        raise ValueError(f"fold must be in 0..num_folds-1, got fold={fold}, num_folds={num_folds}")
    folds = kfold_by_patient(items, int(num_folds), seed=seed)
    for k, members in enumerate(folds):
        for item in members:
            item["fold"] = k
    return {
        "training": [item for item in items if item["fold"] != int(fold)],
        "validation": [item for item in items if item["fold"] == int(fold)],
        "test": [],
    }
