"""DICOM grey-scale pipeline: stored values -> modality LUT -> VOI LUT / window -> MONOCHROME2 [0, 1].

Follows DICOM PS3.3 C.11 (the grey-scale image pipeline) on a pydicom dataset whose pixel data has
already been decoded to stored values (by pydicom or ITK, see :mod:`.dicom`):

1. **Bits Stored**: bits above ``BitsStored`` are masked (unsigned) or the value sign-extended
   (signed); :mod:`.dicom` warns when uncompressed stored values overflowed.
2. **Modality LUT**: the first Modality LUT Sequence item, else ``RescaleSlope`` /
   ``RescaleIntercept`` (a NaN, infinite or zero slope is an :class:`InvalidPixelDataError`).
3. **VOI**: the first VOI LUT Sequence item, else the first Window Center / Width with its VOI LUT
   Function (LINEAR, LINEAR_EXACT, SIGMOID), else the robust percentile window
   (``ReadOptions.percentiles``). An unusable header window (e.g. width <= 1) falls back to
   percentiles with a warning.
4. **MONOCHROME1** is inverted (``1 - y``) so that 1 is always white.

The ``window`` reported is in modality units (after step 2): the LUT's input range for a VOI LUT
Sequence, the linear ramp's bounds for Window Center / Width, the percentiles otherwise.
"""

from __future__ import annotations

import numpy as np

from radlas_monai.data.errors import InvalidPixelDataError
from radlas_monai.data.readers.base import ReadOptions, WarnFn, clean_values, warn_if_saturated, window_and_normalize
from radlas_monai.data.readers.window import apply_dicom_window, apply_lut, dicom_window_bounds, normalize_to_unit

__all__ = ["apply_bits_stored", "apply_modality_lut", "apply_voi", "lut_from_item", "grey_pipeline"]


def apply_bits_stored(stored: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Keep only the ``bits_stored`` low bits of integer stored values (sign-extended when ``signed``).

    Idempotent, so it is safe whether or not the decoder already did it (pydicom 3 does, pydicom 2
    and ITK may not).
    """
    if stored.dtype.kind not in "ui" or not 1 <= bits_stored < stored.dtype.itemsize * 8:
        return stored
    masked = stored.astype(np.int64) & ((1 << bits_stored) - 1)
    if signed:
        masked = np.where(masked >= (1 << (bits_stored - 1)), masked - (1 << bits_stored), masked)
    return masked


def lut_from_item(item) -> tuple[tuple[int, int, int], np.ndarray]:
    """``(descriptor, data)`` of a Modality / VOI LUT Sequence item, whatever VR pydicom gave LUTData.

    Raises:
        ValueError: missing or malformed descriptor / data.
    """
    descriptor = [int(v) for v in item.LUTDescriptor]
    if len(descriptor) != 3:
        raise ValueError("LUT Descriptor must have 3 values")
    entries, first, bits = descriptor
    if first >= 32768 and getattr(item["LUTDescriptor"], "VR", "US") == "US":
        first -= 65536  # "US or SS" descriptors read as US: first mapped value may be signed
    raw = item.LUTData
    if isinstance(raw, (bytes, bytearray)):
        lut = np.frombuffer(raw, dtype="<u2" if bits > 8 or len(raw) >= 2 * (entries or 65536) else "u1")
    else:
        lut = np.asarray(raw if isinstance(raw, (list, tuple)) else [raw], dtype=np.float64)
    return (entries, first, bits), lut.astype(np.float64)


def apply_modality_lut(path: str, ds, stored: np.ndarray) -> np.ndarray:
    """Stored values -> modality values per the Modality LUT Sequence or Rescale Slope / Intercept.

    Integer stored values with an integral slope and intercept stay int64 (exact); otherwise float64.

    Raises:
        InvalidPixelDataError: a NaN / infinite / zero RescaleSlope, a non-finite RescaleIntercept,
            or an unusable Modality LUT Sequence.
    """
    sequence = ds.get("ModalityLUTSequence")
    if sequence:
        try:
            descriptor, lut = lut_from_item(sequence[0])
            return apply_lut(stored, descriptor, lut)
        except (ValueError, AttributeError, KeyError, TypeError) as err:
            raise InvalidPixelDataError(path, f"unusable Modality LUT Sequence ({type(err).__name__})") from None
    try:
        slope = _header_number(ds, "RescaleSlope", 1.0)
        intercept = _header_number(ds, "RescaleIntercept", 0.0)
    except (TypeError, ValueError, IndexError):
        raise InvalidPixelDataError(path, "RescaleSlope / RescaleIntercept is not a number") from None
    if not np.isfinite(slope) or slope == 0.0:
        raise InvalidPixelDataError(path, "RescaleSlope is NaN, infinite or zero: modality values are undefined")
    if not np.isfinite(intercept):
        raise InvalidPixelDataError(path, "RescaleIntercept is NaN or infinite: modality values are undefined")
    if stored.dtype.kind in "iu" and slope.is_integer() and intercept.is_integer():
        values = stored.astype(np.int64)  # exact, and lets the percentile window count instead of sort
        return values * int(slope) + int(intercept) if (slope, intercept) != (1.0, 0.0) else values
    return stored.astype(np.float64) * slope + intercept


def _header_number(ds, keyword: str, default: float) -> float:
    """A numeric header value (first of several), ``default`` when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    return _first_number(value)


def _first_number(value) -> float:
    """The first value of a possibly multi-valued DS element."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def apply_voi(
    path: str, ds, values: np.ndarray, options: ReadOptions, warn: WarnFn
) -> tuple[np.ndarray, tuple[float, float]]:
    """Modality values -> float32 ``[0, 1]`` (before MONOCHROME1 inversion) and the window used."""
    sequence = ds.get("VOILUTSequence")
    if sequence:
        try:
            (entries, first, _), lut = lut_from_item(sequence[0])
            entries = entries or 65536
            if lut[:entries].max() <= lut[:entries].min():
                raise ValueError("constant VOI LUT")
            mapped = apply_lut(values, (entries, first, 0), lut)
            pixels = normalize_to_unit(mapped, lut[:entries].min(), lut[:entries].max())
            warn_if_saturated(path, pixels, warn)
            return pixels, (float(first), float(first + entries - 1))
        except (ValueError, AttributeError, KeyError, TypeError):
            warn("window", f"{path}: unusable VOI LUT Sequence; using the percentile window")
    elif ds.get("WindowCenter") not in (None, "") and ds.get("WindowWidth") not in (None, ""):
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
        try:
            center, width = _first_number(ds.WindowCenter), _first_number(ds.WindowWidth)
            window = dicom_window_bounds(center, width, function)
            pixels = apply_dicom_window(values, center, width, function)
            warn_if_saturated(path, pixels, warn)
            return pixels, window
        except (ValueError, TypeError, IndexError):
            warn("window", f"{path}: unusable Window Center / Width; using the percentile window")
    return window_and_normalize(path, values, None, options, warn)


def grey_pipeline(
    path: str, ds, stored: np.ndarray, options: ReadOptions, warn: WarnFn
) -> tuple[np.ndarray, tuple[float, float], int]:
    """Run steps 1-4 on decoded grey stored values.

    Args:
        path: the file, for messages.
        ds: the pydicom dataset (header only is used).
        stored: ``(H, W)`` stored values as decoded.
        options: reader options.
        warn: warning callback.

    Returns:
        ``(pixels, window, nonfinite_count)``: float32 ``(H, W)`` MONOCHROME2 in ``[0, 1]``.

    Raises:
        InvalidPixelDataError: corrupt rescale, all non-finite or constant pixels.
    """
    bits_allocated = int(ds.get("BitsAllocated", stored.dtype.itemsize * 8) or 16)
    bits_stored = int(ds.get("BitsStored", bits_allocated) or bits_allocated)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    stored = apply_bits_stored(stored, bits_stored, signed)
    values = apply_modality_lut(path, ds, stored)
    values, nonfinite = clean_values(path, values, options, warn)
    pixels, window = apply_voi(path, ds, values, options, warn)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        pixels = 1.0 - pixels
    return pixels.astype(np.float32), window, nonfinite
