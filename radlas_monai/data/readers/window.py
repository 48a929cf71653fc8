"""The project's intensity convention, in one place.

A radiograph tensor is float32 ``1 x H x W`` with values in ``[0, 1]``, MONOCHROME2: 0 = black =
air (no attenuation), 1 = white = bone / metal. Every reader maps its stored values onto that range
with a *window* ``(low, high)`` in the file's own units (stored values after DICOM's modality
LUT / rescale): ``low`` -> 0, ``high`` -> 1, linear in between, clipped outside. The functions here are
that mapping and the ways a window is chosen; transforms elsewhere in the project use
:func:`normalize_to_unit` rather than re-implementing it.

Window sources, by priority, as used by :class:`radlas_monai.data.loader.LoadRadiograph`:

1. a DICOM VOI LUT Sequence (first item) or Window Center / Width (first value),
   see :func:`dicom_window_bounds` and :func:`apply_lut`;
2. the bit depth of 8-bit (``/255``) and 16-bit raster images, see :func:`bit_depth_window`;
3. a robust percentile window (default 0.5 - 99.5 %), see :func:`percentile_window`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "DEFAULT_PERCENTILES",
    "normalize_to_unit",
    "percentile_window",
    "bit_depth_window",
    "effective_bit_depth",
    "dicom_window_bounds",
    "apply_dicom_window",
    "apply_lut",
    "replace_nonfinite",
    "luminance",
]

#: Default (low, high) percentiles of the robust window used when a file carries no window.
DEFAULT_PERCENTILES: tuple[float, float] = (0.5, 99.5)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def normalize_to_unit(array: ArrayT, low: float, high: float) -> ArrayT:
    """Map intensities linearly so that ``low`` -> 0 and ``high`` -> 1, clipped to ``[0, 1]``.

    This is the project's single intensity convention (MONOCHROME2, float32 in ``[0, 1]``).

    Args:
        array: numpy array or torch tensor of any shape; NaN stays NaN.
        low: value mapped to 0 (black).
        high: value mapped to 1 (white); must be greater than ``low``.

    Returns:
        float32 array / tensor of the same type and shape, in ``[0, 1]``.

    Raises:
        ValueError: when ``low`` or ``high`` is not finite or ``high <= low``.

    Example:
        >>> normalize_to_unit(np.array([0, 2048, 4095, 5000]), 0, 4095).round(3).tolist()
        [0.0, 0.5, 1.0, 1.0]
    """
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise ValueError(f"normalize_to_unit: need finite low < high, got low={low!r}, high={high!r}")
    scale = 1.0 / (high - low)
    if isinstance(array, torch.Tensor):
        out = (array.to(torch.float64) - low) * scale
        return out.clamp_(0.0, 1.0).to(torch.float32)
    out = (np.asarray(array, dtype=np.float64) - low) * scale
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32)


def percentile_window(array: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> tuple[float, float]:
    """A robust window: the ``percentiles`` of the finite values, widened to min / max when degenerate.

    Args:
        array: image values (any shape); non-finite values are ignored.
        percentiles: ``(low, high)`` in percent, ``0 <= low < high <= 100``.

    Returns:
        ``(low, high)`` with ``low < high``.

    Raises:
        ValueError: bad percentiles, or fewer than two distinct finite values (a constant image).
    """
    p_low, p_high = (float(p) for p in percentiles)
    if not 0.0 <= p_low < p_high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(percentiles)!r}")
    values = np.asarray(array)
    values = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values.ravel()
    if values.size == 0:
        raise ValueError("percentile_window: no finite values")
    if values.dtype.kind in "iub":
        low, high = _integer_percentiles(values.astype(np.int64, copy=False), (p_low, p_high))
    else:
        low, high = (float(v) for v in np.percentile(values, [p_low, p_high]))
    if high <= low:  # a few outliers on a (nearly) constant background: use the full range
        low, high = float(values.min()), float(values.max())
    if high <= low:
        raise ValueError("percentile_window: constant image, no window can be derived")
    return low, high


def _integer_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear method) by counting, for integer data.

    Equal to numpy's result but O(n) instead of a partition, which matters for 50-megapixel images.
    Falls back to ``np.percentile`` when the value span is too wide for a histogram.
    """
    low_value, high_value = int(values.min()), int(values.max())
    if high_value - low_value > (1 << 22):
        return [float(v) for v in np.percentile(values, percentiles)]
    cumulative = np.cumsum(np.bincount(values - low_value, minlength=high_value - low_value + 1))
    result = []
    for q in percentiles:
        rank = (values.size - 1) * float(q) / 100.0
        below = int(np.floor(rank))
        above = min(below + 1, values.size - 1)
        v_below = int(np.searchsorted(cumulative, below, side="right")) + low_value
        v_above = int(np.searchsorted(cumulative, above, side="right")) + low_value
        result.append(v_below + (rank - below) * (v_above - v_below))
    return result


def effective_bit_depth(max_value: float, candidates: Sequence[int] = (8, 10, 12, 14, 16)) -> int:
    """The smallest of ``candidates`` whose range ``0 .. 2**bits - 1`` holds ``max_value``.

    Used for 16-bit raster images that store 10 / 12 / 14-bit detector data (max 1023 / 4095 /
    16383): dividing those by 65535 would make them nearly black.

    Args:
        max_value: the largest stored value.
        candidates: allowed bit depths, ascending.

    Returns:
        The bit depth; the largest candidate when none holds ``max_value``.
    """
    for bits in candidates:
        if max_value <= (1 << bits) - 1:
            return int(bits)
    return int(candidates[-1])


def bit_depth_window(bits: int) -> tuple[float, float]:
    """The window ``(0, 2**bits - 1)`` of unsigned ``bits``-bit data (8-bit: ``/255``)."""
    if not 1 <= int(bits) <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    return 0.0, float((1 << int(bits)) - 1)


def dicom_window_bounds(center: float, width: float, function: str = "LINEAR") -> tuple[float, float]:
    """Window Center / Width (DICOM PS3.3 C.11.2.1.2) as ``(low, high)`` bounds of a linear ramp.

    ``LINEAR`` follows the standard's definition (``c - 0.5 -/+ (w - 1) / 2``); ``LINEAR_EXACT`` and
    ``SIGMOID`` use ``c -/+ w / 2`` (for SIGMOID these are the bounds reported in meta data; the
    curve itself is applied by :func:`apply_dicom_window`).

    Args:
        center: Window Center.
        width: Window Width (> 1 for LINEAR, > 0 otherwise).
        function: VOI LUT Function.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: non-finite values, a width the function does not allow, or an unknown function.
    """
    center, width = float(center), float(width)
    function = (function or "LINEAR").strip().upper()
    if not (np.isfinite(center) and np.isfinite(width)):
        raise ValueError("window center / width must be finite")
    if function == "LINEAR":
        if width <= 1.0:
            raise ValueError("LINEAR window width must be > 1")
        return center - 0.5 - (width - 1.0) / 2.0, center - 0.5 + (width - 1.0) / 2.0
    if function in ("LINEAR_EXACT", "SIGMOID"):
        if width <= 0.0:
            raise ValueError(f"{function} window width must be > 0")
        return center - width / 2.0, center + width / 2.0
    raise ValueError(f"unknown VOI LUT Function {function!r} (expected LINEAR, LINEAR_EXACT or SIGMOID)")


def apply_dicom_window(array: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply Window Center / Width with its VOI LUT Function, returning float32 in ``[0, 1]``.

    Raises:
        ValueError: see :func:`dicom_window_bounds`.
    """
    low, high = dicom_window_bounds(center, width, function)
    if (function or "LINEAR").strip().upper() == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (np.asarray(array, dtype=np.float64) - float(center)) / float(width)))
        return out.astype(np.float32)
    return normalize_to_unit(array, low, high)


def apply_lut(array: np.ndarray, descriptor: Sequence[int], lut: np.ndarray) -> np.ndarray:
    """Look values up in a DICOM LUT (Modality or VOI LUT Sequence item).

    Values below the first mapped value take the first entry, values above the last take the last
    entry (PS3.3 C.11.2.1.1).

    Args:
        array: integer-valued input.
        descriptor: LUT Descriptor ``(entries, first_mapped, bits)``; 0 entries means 65536.
        lut: the LUT Data, one value per entry.

    Returns:
        float64 array of looked-up values, same shape as ``array``.

    Raises:
        ValueError: when the LUT Data is shorter than the descriptor says.
    """
    entries, first = int(descriptor[0]) or 65536, int(descriptor[1])
    lut = np.asarray(lut, dtype=np.float64).ravel()
    if lut.size < entries:
        raise ValueError(f"LUT Data has {lut.size} entries, descriptor declares {entries}")
    index = np.clip(np.rint(np.asarray(array, dtype=np.float64)) - first, 0, entries - 1).astype(np.int64)
    return lut[:entries][index]


def replace_nonfinite(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN / +-inf by the smallest finite value (black after windowing).

    Args:
        array: image values.

    Returns:
        ``(array, count)``: a copy with the replacements (the input itself when there were none) and
        the number of replaced pixels.

    Raises:
        ValueError: when no value is finite.
    """
    if not np.issubdtype(array.dtype, np.floating):
        return array, 0
    finite = np.isfinite(array)
    count = int(finite.size - np.count_nonzero(finite))
    if count == 0:
        return array, 0
    if count == finite.size:
        raise ValueError("no finite pixel values")
    out = array.copy()
    out[~finite] = array[finite].min()
    return out, count


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of an ``(H, W, 3+)`` array (alpha ignored), float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
