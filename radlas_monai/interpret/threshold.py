"""Lesion map -> binary mask: min-max normalisation and fixed, Otsu or percentile thresholds.

Every localization output of the project (the lesion_localization bundle, the localization metrics and the
MONAI Label app) thresholds maps through :func:`threshold_map`, so a mask means the same thing everywhere.

Conventions:

* a map is a 2D array ``(H, W)`` (a leading channel of 1, ``(1, H, W)``, is accepted and dropped), as a numpy
  array or a torch tensor; rows are image y, columns image x;
* thresholds of the ``"fixed"`` and ``"otsu"`` methods live on the **min-max-normalised** map, so they do not
  depend on the map's scale;
* a constant map carries no localization evidence: it normalises to zeros and yields an **empty** mask with
  every method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["THRESHOLD_METHODS", "as_heatmap", "normalize_map", "otsu_threshold", "threshold_map"]

#: The thresholding methods of :func:`threshold_map`.
THRESHOLD_METHODS: tuple[str, ...] = ("fixed", "otsu", "percentile")


def as_heatmap(heatmap: Any, name: str = "heatmap") -> np.ndarray:
    """A map as a finite float32 ``(H, W)`` numpy array.

    Args:
        heatmap: ``(H, W)`` or ``(1, H, W)`` numpy array, torch tensor or nested sequence.
        name: what to call the argument in error messages.

    Returns:
        float32 array of shape ``(H, W)`` (a view or a copy).

    Raises:
        ValueError: when the shape is not ``(H, W)`` / ``(1, H, W)``, is empty, or values are not finite.
    """
    if hasattr(heatmap, "detach"):  # torch tensor, without importing torch here
        heatmap = heatmap.detach().cpu().float().numpy()
    array = np.asarray(heatmap, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected {name} of shape (H, W) or (1, H, W), got {tuple(np.shape(heatmap))}")
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} of shape {array.shape} has {bad} non-finite values (NaN or inf)")
    return array


def normalize_map(heatmap: Any) -> np.ndarray:
    """Min-max normalise a map to ``[0, 1]``.

    Args:
        heatmap: ``(H, W)`` map (numpy array or torch tensor).

    Returns:
        float32 ``(H, W)`` array with minimum 0 and maximum 1; all zeros for a constant map.

    Raises:
        ValueError: on a wrong shape or non-finite values.
    """
    array = as_heatmap(heatmap)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.float32)
    return ((array - low) / (high - low)).astype(np.float32)


def otsu_threshold(values: Any, bins: int = 256) -> float:
    """Otsu's threshold of values in ``[0, 1]`` (Otsu, IEEE Trans. SMC 1979).

    The histogram of ``values`` over ``bins`` equal bins of ``[0, 1]`` is split where the between-class variance
    ``w0 w1 (mu0 - mu1)^2`` is largest; the threshold is the upper edge of the last bin of the lower class, so
    ``values >= threshold`` is the upper class. Ties between equally good splits take the first (lowest) one.

    Args:
        values: array of any shape with values in ``[0, 1]`` (e.g. a normalised map).
        bins: number of histogram bins.

    Returns:
        The threshold in ``[0, 1]``; 1.0 when all values fall into one bin (nothing to split).

    Raises:
        ValueError: when ``bins < 2`` or ``values`` is empty.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    flat = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, 1.0)
    if flat.size == 0:
        raise ValueError("otsu_threshold needs at least one value, got an empty array")
    index = np.minimum((flat * bins).astype(np.int64), bins - 1)
    hist = np.bincount(index, minlength=bins).astype(np.float64)
    centres = (np.arange(bins) + 0.5) / bins
    w0 = np.cumsum(hist)[:-1]
    w1 = flat.size - w0
    m0 = np.cumsum(hist * centres)[:-1]
    m1 = float((hist * centres).sum()) - m0
    valid = (w0 > 0) & (w1 > 0)
    if not valid.any():
        return 1.0
    between = np.zeros(bins - 1)
    between[valid] = w0[valid] * w1[valid] * (m0[valid] / w0[valid] - m1[valid] / w1[valid]) ** 2
    return float((int(np.argmax(between)) + 1) / bins)


def threshold_map(heatmap: Any, method: str = "otsu", value: float | None = None) -> np.ndarray:
    """Binarise a lesion map.

    Methods (``n`` is the min-max-normalised map, see :func:`normalize_map`):

    * ``"fixed"``: ``n >= value`` with ``value`` in ``[0, 1]`` (required);
    * ``"otsu"``: ``n >= otsu_threshold(n)`` (``value`` is ignored);
    * ``"percentile"``: ``n >= percentile(n, value)`` with ``value`` in ``[0, 100]`` (default 95), i.e. roughly
      the top ``100 - value`` % of pixels (more on ties).

    A constant map gives an empty mask whatever the method.

    Args:
        heatmap: ``(H, W)`` map (numpy array or torch tensor).
        method: one of :data:`THRESHOLD_METHODS`.
        value: the method's parameter (see above).

    Returns:
        bool array ``(H, W)``.

    Raises:
        ValueError: on an unknown method, a missing or out-of-range ``value``, or a bad map shape.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method {method!r}, expected one of {THRESHOLD_METHODS}")
    if method == "fixed" and (value is None or not 0.0 <= float(value) <= 1.0):
        raise ValueError(f"method 'fixed' needs a value in [0, 1] on the normalised map, got {value!r}")
    if method == "percentile" and value is not None and not 0.0 <= float(value) <= 100.0:
        raise ValueError(f"method 'percentile' needs a value in [0, 100], got {value!r}")
    array = as_heatmap(heatmap)
    if float(array.max()) <= float(array.min()):
        return np.zeros(array.shape, dtype=bool)
    norm = normalize_map(array)
    if method == "fixed":
        return norm >= np.float32(value)
    if method == "otsu":
        return norm >= np.float32(otsu_threshold(norm))
    cut = np.percentile(norm, 95.0 if value is None else float(value))
    return norm >= np.float32(cut)
