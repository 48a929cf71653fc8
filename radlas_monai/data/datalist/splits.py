"""Patient-level splits, k-fold partitions and label-fraction sampling of datalist items."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from radlas_monai.data.datalist._constants import SPLIT_KEYS


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
