"""Single-frame DICOM radiographs: header checks with pydicom, pixel decoding by pydicom or ITK.

The header is always parsed with pydicom (``dcmread``, also for preamble-less datasets), and checked
before any pixel data is decoded: pixel data present, single frame (else
:class:`NotA2DImageError`), ``Rows x Columns`` within ``max_pixels`` (else
:class:`ImageTooLargeError`), and for uncompressed transfer syntaxes, enough pixel bytes (else
:class:`TruncatedFileError`).

Decoding (``ReadOptions.dicom_backend``): ``"auto"`` tries pydicom, then ITK/GDCM (which decodes
e.g. JPEG Lossless and JPEG-LS without pydicom plugins); ``"pydicom"`` / ``"itk"`` use only one.
ITK's GDCM reader silently inverts MONOCHROME1 stored values (bitwise, within BitsStored) and
applies Rescale Slope / Intercept; both are undone here, so every backend hands the *same stored
values* to one grey-scale pipeline (:mod:`.dicom_intensity`) and the results agree.
When neither can decode a compressed transfer syntax for lack of a plugin, the error is a
:class:`MissingDecoderError` naming the plugins to install.

Modalities: CR, DX, DR, MG, RG, IO and PX are radiographs. Any other (or none) is read anyway with
one warning per loader, or rejected with :class:`UnsupportedFormatError` when
``ReadOptions.strict_modality``. Spacing: ``PixelSpacing``, else ``ImagerPixelSpacing``, else
``NominalScannedPixelSpacing`` as ``(row_mm, col_mm)``; missing or invalid (NaN, <= 0) spacing is
left unset with a warning. Colour (RGB / YBR) data is reduced to luminance; PALETTE COLOR is rejected.

Only allow-listed facts leave this module (never patient data), and messages never contain
header strings.
"""

from __future__ import annotations

import io

import numpy as np

from radlas_monai.data.errors import (
    InvalidPixelDataError,
    MissingDecoderError,
    NotA2DImageError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from radlas_monai.data.readers.base import (
    DecodedImage,
    ReadOptions,
    WarnFn,
    check_pixel_count,
    clean_values,
    window_and_normalize,
)
from radlas_monai.data.readers.dicom_intensity import grey_pipeline
from radlas_monai.data.readers.window import luminance

__all__ = ["RADIOGRAPH_MODALITIES", "DECODER_PLUGINS", "read_dicom", "pydicom_can_decode"]

#: Modalities read without a warning.
RADIOGRAPH_MODALITIES = ("CR", "DX", "DR", "MG", "RG", "IO", "PX")
#: pip packages that add a pydicom decoder, by transfer syntax UID prefix / value.
DECODER_PLUGINS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg + pylibjpeg-libjpeg, or python-gdcm",
    "1.2.840.10008.1.2.4.51": "pylibjpeg + pylibjpeg-libjpeg, or python-gdcm",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg, or python-gdcm",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg, or python-gdcm",
    "1.2.840.10008.1.2.4.80": "pyjpegls (pydicom 3) or pylibjpeg-libjpeg (pydicom 2), or python-gdcm",
    "1.2.840.10008.1.2.4.81": "pyjpegls (pydicom 3) or pylibjpeg-libjpeg (pydicom 2), or python-gdcm",
    "1.2.840.10008.1.2.4.9": "pylibjpeg + pylibjpeg-openjpeg, or python-gdcm",
    "1.2.840.10008.1.2.4.20": "pylibjpeg + pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.5": "pylibjpeg + pylibjpeg-rle (or numpy for pydicom's own RLE decoder)",
}
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_SPACING_KEYWORDS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
_TRUNCATION_WORDS = ("truncat", "end of file", "unexpected end", "premature", "insufficient data")


def _pydicom_major() -> int:
    import pydicom

    return int(pydicom.__version__.split(".")[0])


def _parse(path: str, data: bytes, preamble: bool):
    """pydicom dataset of the file's bytes; typed errors when it is not a (complete) DICOM header."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not preamble)
    except Exception as err:  # pydicom raises InvalidDicomError, EOFError, ValueError, struct.error, ...
        message = str(err).lower()
        if preamble and any(word in message for word in _TRUNCATION_WORDS + ("eof",)):
            raise TruncatedFileError(path, "DICOM file ends inside its header") from None
        raise UnsupportedFormatError(path, f"DICOM header cannot be parsed ({type(err).__name__})") from None
    if not preamble and not any(k in ds for k in ("Rows", "SOPClassUID", "PixelData", "Modality")):
        raise UnsupportedFormatError(path, "not DICOM: no DICM marker and the content is not a DICOM dataset")
    return ds


def _transfer_syntax(ds):
    """The dataset's transfer syntax; inferred from how it was read (and set) when the file meta lacks it."""
    from pydicom import uid
    from pydicom.dataset import FileMetaDataset

    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "TransferSyntaxUID" in file_meta:
        return uid.UID(file_meta.TransferSyntaxUID)
    encoding = getattr(ds, "original_encoding", None)  # pydicom 3: (implicit_vr, little_endian)
    if encoding is None:
        encoding = (ds.is_implicit_VR, ds.is_little_endian)
    implicit, little = encoding
    if implicit:
        ts = uid.ImplicitVRLittleEndian
    else:
        ts = uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
    if file_meta is None:
        ds.file_meta = file_meta = FileMetaDataset()
    file_meta.TransferSyntaxUID = ts  # pixel decoders need it
    return ts


def _check_header(path: str, ds, ts, options: ReadOptions) -> tuple[int, int]:
    """Geometry checks before decoding; returns ``(rows, cols)``."""
    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        sop_class = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None) or ds.get("SOPClassUID")
        if len(ds) == 0 or (sop_class is not None and "Image Storage" in getattr(sop_class, "name", "")):
            raise TruncatedFileError(path, "DICOM image file ends before its pixel data")
        raise UnsupportedFormatError(path, "DICOM file has no pixel data (not an image object)")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits_allocated = int(ds.get("BitsAllocated", 16) or 16)
    except (AttributeError, TypeError, ValueError):
        raise UnsupportedFormatError(path, "DICOM image without valid Rows / Columns / frame attributes") from None
    if frames > 1:
        raise NotA2DImageError(path, f"multi-frame DICOM ({frames} frames); expected a single 2D radiograph")
    if rows < 1 or cols < 1:
        raise InvalidPixelDataError(path, f"DICOM header declares an empty image ({rows} x {cols})")
    check_pixel_count(path, rows, cols, options.max_pixels)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples not in (1, 3) or photometric.startswith("PALETTE"):
        raise UnsupportedFormatError(path, "colour-palette or multi-sample DICOM is not a radiograph")
    if not ts.is_compressed:
        element = ds[keyword]
        available = len(element.value) if element.value is not None else 0
        needed = (rows * cols * samples * bits_allocated + 7) // 8
        if available < needed:
            raise TruncatedFileError(
                path, f"pixel data has {available} bytes; {rows} x {cols} x {bits_allocated}-bit needs {needed}"
            )
    return rows, cols


def _warn_if_bits_overflow(path: str, ds, ts, warn: WarnFn) -> None:
    """Warn when unsigned native 16-bit stored values use bits above BitsStored (decoders drop them)."""
    bits_stored = int(ds.get("BitsStored", 16) or 16)
    if (
        ts.is_compressed
        or "PixelData" not in ds
        or int(ds.get("BitsAllocated", 16) or 16) != 16
        or int(ds.get("PixelRepresentation", 0) or 0) != 0
        or not 1 <= bits_stored < 16
    ):
        return
    raw = ds.PixelData
    stored = np.frombuffer(raw, dtype="<u2" if ts != "1.2.840.10008.1.2.2" else ">u2", count=len(raw) // 2)
    if np.any(stored >> bits_stored):
        warn("bits_stored", f"{path}: stored values exceed BitsStored; the bits above it are ignored")


def pydicom_can_decode(ts) -> bool:
    """Whether the installed pydicom has a usable decoder for transfer syntax ``ts``."""
    if not ts.is_compressed:
        return True
    try:
        from pydicom.pixels import get_decoder  # pydicom >= 3

        return bool(get_decoder(ts).is_available)
    except ImportError:
        from pydicom import config

        return any(h.is_available() and h.supports_transfer_syntax(ts) for h in config.pixel_data_handlers)
    except Exception:  # pydicom 3 raises NotImplementedError for syntaxes it has no decoder class for
        return False


def _decode_pydicom(ds) -> np.ndarray:
    return np.asarray(ds.pixel_array)


def _decode_itk(path: str, ds) -> np.ndarray:
    """Stored values decoded by ITK/GDCM, with ITK's MONOCHROME1 inversion and rescale undone."""
    import itk

    image_io = itk.GDCMImageIO.New()
    image = itk.imread(path, imageio=image_io)
    values = np.asarray(itk.array_from_image(image))
    if values.ndim >= 3 and values.shape[0] == 1:
        values = values[0]
    slope, intercept = float(image_io.GetRescaleSlope()), float(image_io.GetRescaleIntercept())
    if slope != 1.0 or intercept != 0.0:
        values = np.rint((values.astype(np.float64) - intercept) / slope).astype(np.int64)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        bits_stored = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
        values = values.astype(np.int64)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        values = -1 - values if signed else ((1 << bits_stored) - 1) - values
    return values


def _decode(path: str, ds, ts, options: ReadOptions) -> tuple[np.ndarray, str]:
    """Decoded stored values and the backend that decoded them; typed error when none can."""
    failures: list[str] = []
    backends = ("pydicom", "itk") if options.dicom_backend == "auto" else (options.dicom_backend,)
    for backend in backends:
        try:
            if backend == "pydicom":
                return _decode_pydicom(ds), backend
            return _decode_itk(path, ds), backend
        except Exception as err:  # decoder libraries raise many types; all are mapped below
            failures.append(f"{backend}: {type(err).__name__}")
            if any(word in str(err).lower() for word in _TRUNCATION_WORDS):
                raise TruncatedFileError(path, f"{ts.name} pixel data ends early ({backend})") from None
    tried = "; ".join(failures)
    if ts.is_compressed and not pydicom_can_decode(ts):
        plugins = next((v for k, v in DECODER_PLUGINS.items() if str(ts).startswith(k)), "pylibjpeg or python-gdcm")
        raise MissingDecoderError(
            path,
            f"pixel data is compressed as {ts.name} ({ts}); no installed decoder could read it "
            f"({tried}); install {plugins}",
        )
    raise InvalidPixelDataError(path, f"{ts.name} pixel data cannot be decoded ({tried})")


def _spacing(path: str, ds, warn: WarnFn) -> tuple[float, float] | None:
    keyword = next((k for k in _SPACING_KEYWORDS if ds.get(k) not in (None, "")), None)
    if keyword is None:
        warn("spacing", f"{path}: DICOM has no pixel spacing; spacing left unset")
        return None
    try:
        row_mm, col_mm = (float(v) for v in ds.get(keyword))
    except (TypeError, ValueError):
        row_mm = col_mm = float("nan")
    if not all(np.isfinite(v) and v > 0 for v in (row_mm, col_mm)):
        warn("spacing", f"{path}: DICOM pixel spacing is not two positive numbers; spacing left unset")
        return None
    return row_mm, col_mm


def _modality(path: str, ds, options: ReadOptions, warn: WarnFn) -> str | None:
    modality = str(ds.get("Modality", "") or "").strip().upper() or None
    if modality not in RADIOGRAPH_MODALITIES:
        reason = "DICOM modality is not a radiograph modality (" + "/".join(RADIOGRAPH_MODALITIES) + ")"
        if options.strict_modality:
            raise UnsupportedFormatError(path, reason)
        warn("modality", f"{path}: {reason}; reading it anyway")
    return modality


def _colour_to_grey(values: np.ndarray, photometric: str, decoder: str) -> np.ndarray:
    """Luminance of decoded colour data (pydicom 3 and ITK deliver RGB; pydicom 2 may keep YBR)."""
    if photometric.startswith("YBR") and decoder == "pydicom" and _pydicom_major() < 3:
        return values[..., 0].astype(np.float64)  # Y is the luminance
    return luminance(values)


def read_dicom(path: str, data: bytes, preamble: bool, options: ReadOptions, warn: WarnFn) -> DecodedImage:
    """Decode a single-frame DICOM file's bytes.

    Args:
        path: the file (ITK reads it from disk when it decodes).
        data: the file's bytes.
        preamble: whether the file has the preamble and ``DICM`` (else parsed with ``force=True``).
        options: reader options.
        warn: warning callback.

    Returns:
        The decoded image in the project convention.

    Raises:
        RadiographReadError: a typed subclass for every failure (see the module docstring).
    """
    ds = _parse(path, data, preamble)
    ts = _transfer_syntax(ds)
    rows, cols = _check_header(path, ds, ts, options)
    modality = _modality(path, ds, options, warn)
    _warn_if_bits_overflow(path, ds, ts, warn)
    values, decoder = _decode(path, ds, ts, options)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if values.ndim == 3 and values.shape[-1] >= 3:
        grey, nonfinite = clean_values(path, _colour_to_grey(values, photometric, decoder), options, warn)
        pixels, window = window_and_normalize(path, grey, None, options, warn)
    elif values.shape == (rows, cols):
        pixels, window, nonfinite = grey_pipeline(path, ds, values, options, warn)
    else:
        raise InvalidPixelDataError(path, f"decoded pixel array has shape {values.shape}, header says {rows} x {cols}")
    bits_allocated = int(ds.get("BitsAllocated", 16) or 16)
    return DecodedImage(
        pixels=pixels,
        source_format="dicom",
        window=window,
        photometric_interpretation=photometric,
        bits_stored=int(ds.get("BitsStored", bits_allocated) or bits_allocated),
        spacing=_spacing(path, ds, warn),
        modality=modality,
        nonfinite_pixels=nonfinite,
        decoder=decoder,
    )
