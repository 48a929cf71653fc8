"""Percentile bootstrap confidence intervals, resampling images (or patients).

Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 (percentile interval). A resample draws
``n`` units with replacement; when ``groups`` (e.g. patient ids) are given the units are the groups and every
image of a drawn group comes along (a cluster bootstrap, so images of one patient are never split). A resample
is represented by the **multiplicity** of every image, so metrics are computed as weighted statistics without
copying data. Resamples come from a local ``numpy.random.Generator`` seeded by ``seed`` (no global RNG).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_weights", "percentile_interval"]


def bootstrap_weights(n_items: int, n_resamples: int, seed: int = 0, groups: Sequence[Any] | None = None) -> np.ndarray:
    """Multiplicity of every item in every resample.

    Args:
        n_items: number of items (images).
        n_resamples: number of resamples.
        seed: seed of the local generator.
        groups: optional ``(n_items,)`` group ids; groups are resampled instead of items.

    Returns:
        float64 ``(n_resamples, n_items)``; each row sums to ``n_items`` without groups.

    Raises:
        ValueError: on non-positive sizes or ``groups`` of another length.
    """
    if n_items < 1 or n_resamples < 1:
        raise ValueError(f"need n_items >= 1 and n_resamples >= 1, got {n_items} and {n_resamples}")
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_units = np.arange(n_items), n_items
    else:
        if len(groups) != n_items:
            raise ValueError(f"groups has {len(groups)} entries for {n_items} items")
        _, codes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
        n_units = int(codes.max()) + 1
    draws = rng.integers(0, n_units, size=(n_resamples, n_units))
    offsets = (np.arange(n_resamples) * n_units)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_units).reshape(n_resamples, n_units)
    return counts[:, codes].astype(np.float64)


def percentile_interval(samples: Any, confidence: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap samples, ignoring NaN (undefined resamples).

    Args:
        samples: ``(R,)`` statistic values.
        confidence: coverage in ``(0, 1)``.

    Returns:
        ``(low, high)``; NaNs when no sample is finite.

    Raises:
        ValueError: when ``confidence`` is not in ``(0, 1)``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(samples, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], Mapping[str, float]],
    n_items: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of every value a statistic returns.

    Args:
        statistic: maps ``(n_items,)`` item weights (multiplicities) to ``{name: value}``.
        n_items: number of items.
        n_resamples: number of resamples.
        confidence: interval coverage.
        seed: seed of the resampling.
        groups: optional group id per item (resample groups, e.g. patients).

    Returns:
        ``{name: (low, high)}`` for every name the statistic returned.

    Raises:
        ValueError: see :func:`bootstrap_weights` and :func:`percentile_interval`.
    """
    weights = bootstrap_weights(n_items, n_resamples, seed=seed, groups=groups)
    samples: dict[str, list[float]] = {}
    for row in weights:
        for name, value in statistic(row).items():
            samples.setdefault(name, []).append(float(value))
    return {name: percentile_interval(values, confidence) for name, values in samples.items()}
