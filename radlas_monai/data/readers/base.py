"""What every format reader shares: options, the decoded result, and the common checks.

A reader takes the file's bytes (already read and identified by :mod:`.detect`) and returns a
:class:`DecodedImage` whose ``pixels`` follow the project convention (float32 ``H x W`` in
``[0, 1]``, MONOCHROME2, rows = y). Readers raise the typed errors of
:mod:`radlas_monai.data.errors` and report recoverable oddities through a ``warn(kind, message)``
callback, which :class:`~radlas_monai.data.loader.LoadRadiograph` turns into one log warning per
kind and loader instance. Messages name the file and counts, never DICOM header values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from radlas_monai.data.errors import ImageTooLargeError, InvalidPixelDataError
from radlas_monai.data.readers.window import (
    DEFAULT_PERCENTILES,
    normalize_to_unit,
    percentile_window,
    replace_nonfinite,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "WINDOW_16BIT_MODES",
    "DICOM_BACKENDS",
    "ReadOptions",
    "DecodedImage",
    "WarnFn",
    "check_pixel_count",
    "clean_values",
    "window_and_normalize",
]

#: Default decompression-bomb guard: no image above 50 megapixels is decoded.
DEFAULT_MAX_PIXELS = 50_000_000
#: How 16-bit PNGs are windowed: by the effective bit depth, by the full 16-bit range, or by percentiles.
WINDOW_16BIT_MODES = ("bits", "full", "percentile")
#: Which library decodes DICOM pixel data: pydicom with ITK as fallback, or one of them only.
DICOM_BACKENDS = ("auto", "pydicom", "itk")

#: ``warn(kind, message)``: report a recoverable problem of kind ``kind`` (e.g. ``"nonfinite"``).
WarnFn = Callable[[str, str], None]

#: Fraction of pixels at 0 or at 1 after windowing above which the input "looks out of range".
SATURATION_WARN_FRACTION = 0.5


@dataclass(frozen=True)
class ReadOptions:
    """Settings every reader receives (see :class:`~radlas_monai.data.loader.LoadRadiograph`).

    Raises:
        ValueError: on construction, when a value is out of its allowed set or range.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    window_16bit: str = "bits"
    dicom_backend: str = "auto"
    reject_constant: bool = True
    strict_modality: bool = False

    def __post_init__(self) -> None:
        if int(self.max_pixels) < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        low, high = (float(p) for p in self.percentiles)
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(self.percentiles)!r}")
        if self.window_16bit not in WINDOW_16BIT_MODES:
            raise ValueError(f"window_16bit must be one of {WINDOW_16BIT_MODES}, got {self.window_16bit!r}")
        if self.dicom_backend not in DICOM_BACKENDS:
            raise ValueError(f"dicom_backend must be one of {DICOM_BACKENDS}, got {self.dicom_backend!r}")


@dataclass
class DecodedImage:
    """A decoded 2D radiograph and the allow-listed facts about it.

    Attributes:
        pixels: ``(H, W)`` float32 in ``[0, 1]``, MONOCHROME2, rows = image y.
        source_format: ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"nifti"``.
        window: ``(low, high)`` used, in the file's units (after DICOM rescale).
        photometric_interpretation: of the source (``"MONOCHROME1"``, ``"RGB"``, ...).
        bits_stored: significant bits of the stored values (for floats: the dtype's bits).
        spacing: ``(row_mm, col_mm)`` when the file states a valid one.
        modality: DICOM Modality, when present.
        nonfinite_pixels: NaN / inf pixels replaced by the minimum finite value.
        decoder: the library that decoded the pixels (``"pydicom"``, ``"itk"``, ``"pillow"``, ``"nibabel"``).
        image_id: first 16 hex digits of the SHA-256 of the file's bytes (set by
            :func:`~radlas_monai.data.readers.dispatch.read_radiograph`).
    """

    pixels: np.ndarray
    source_format: str
    window: tuple[float, float]
    photometric_interpretation: str
    bits_stored: int | None = None
    spacing: tuple[float, float] | None = None
    modality: str | None = None
    nonfinite_pixels: int = 0
    decoder: str = ""
    image_id: str = ""


def check_pixel_count(path: str, rows: int, cols: int, max_pixels: int, frames: int = 1) -> None:
    """Reject a header that declares more than ``max_pixels`` pixels, before anything is decoded.

    Raises:
        ImageTooLargeError: ``rows * cols * frames > max_pixels``.
    """
    total = int(rows) * int(cols) * max(int(frames), 1)
    if total > int(max_pixels):
        raise ImageTooLargeError(
            path,
            f"header declares {int(rows)} x {int(cols)}"
            + (f" x {int(frames)} frames" if int(frames) > 1 else "")
            + f" = {total} pixels, more than max_pixels={int(max_pixels)} (not decoded)",
        )


def clean_values(path: str, values: np.ndarray, options: ReadOptions, warn: WarnFn) -> tuple[np.ndarray, int]:
    """Replace partial NaN / inf values and reject images without usable pixels.

    Args:
        path: the file, for messages.
        values: ``(H, W)`` values in the file's units.
        options: reader options (``reject_constant``).
        warn: warning callback.

    Returns:
        ``(values, nonfinite_count)``.

    Raises:
        InvalidPixelDataError: all values non-finite, or a constant image when ``reject_constant``.
    """
    try:
        values, nonfinite = replace_nonfinite(values)
    except ValueError:
        raise InvalidPixelDataError(path, f"all {values.size} pixel values are NaN or infinite") from None
    if nonfinite:
        warn("nonfinite", f"{path}: {nonfinite} NaN/inf pixels replaced by the minimum finite value")
    if options.reject_constant and values.size and values.min() == values.max():
        raise InvalidPixelDataError(path, "constant image: every pixel has the same value")
    return values, nonfinite


def window_and_normalize(
    path: str,
    values: np.ndarray,
    window: tuple[float, float] | None,
    options: ReadOptions,
    warn: WarnFn,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Normalize with ``window``, or a percentile window when ``None``; warn when the result saturates.

    A constant image (allowed with ``reject_constant=False``) gets the window ``(v - 1, v)`` when no
    window is given, so that it maps to 1 where nonzero and 0 where zero.

    Returns:
        ``(pixels, window)``: float32 ``(H, W)`` in ``[0, 1]`` and the ``(low, high)`` used.
    """
    if window is None:
        try:
            window = percentile_window(values, options.percentiles)
        except ValueError:
            value = float(values.flat[0]) if values.size else 0.0
            window = (value - 1.0, value) if value > 0 else (value, value + 1.0)
    pixels = normalize_to_unit(values, *window)
    warn_if_saturated(path, pixels, warn)
    return pixels, (float(window[0]), float(window[1]))


def warn_if_saturated(path: str, pixels: np.ndarray, warn: WarnFn) -> None:
    """Warn when more than half of the pixels are clipped to 0 or to 1 (the window looks wrong)."""
    if pixels.size < 2:
        return
    for value, name in ((0.0, "black (0)"), (1.0, "white (1)")):
        fraction = float(np.count_nonzero(pixels == value)) / pixels.size
        if fraction > SATURATION_WARN_FRACTION:
            warn(
                "saturated",
                f"{path}: {fraction:.0%} of the pixels are {name} after windowing; "
                "the input looks out of the expected intensity range",
            )
