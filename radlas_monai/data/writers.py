"""Write 2D radiographs as PNG, JPEG, NIfTI or DICOM files that :class:`LoadRadiograph` reads back.

The writers are the inverse of the project's reader conventions (see
:mod:`radlas_monai.data.loader`): an array is ``H x W`` with rows = image y and columns = image x,
whatever the format. They are used by the synthetic-dataset script and by tests across the project,
so every writer validates its input, creates missing parent folders and returns the written path.

Intensity conventions of the writers:

* integer arrays are written with their values unchanged (they must fit the target bit depth);
* float arrays must lie in ``[0, 1]`` and are scaled to the full range of the target bit depth
  (``round(x * (2**bits - 1))``).

Example::

    import numpy as np
    from radlas_monai.data.writers import write_dicom, write_png

    image = np.zeros((64, 64), dtype=np.float32)
    image[2, 7] = 1.0
    write_png(image, "out/a.png")                       # 8-bit, pixel (row 2, col 7) = 255
    write_dicom((image * 4095).astype(np.uint16), "out/a.dcm", spacing=(0.143, 0.143))
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_png", "write_jpeg", "write_nifti", "write_dicom", "SOP_CLASS_UIDS"]

#: SOP Class UIDs used by :func:`write_dicom` per modality; other modalities are written as
#: Secondary Capture Image Storage.
SOP_CLASS_UIDS: dict[str, str] = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
}
_SECONDARY_CAPTURE_UID = "1.2.840.10008.5.1.4.1.1.7"
_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_PATIENT_GROUP = 0x0010


def _to_integer_image(array: np.ndarray, bits: int, name: str) -> np.ndarray:
    """Return ``array`` as unsigned integers of ``bits`` bits (8 or 16 storage), checking the range.

    Floats in ``[0, 1]`` are scaled to ``[0, 2**bits - 1]``; integers keep their values.

    Raises:
        ValueError: non-finite values, floats outside ``[0, 1]``, integers that do not fit, or a
            dtype that is neither integer, bool nor float.
    """
    array = np.asarray(array)
    max_value = (1 << bits) - 1
    storage = np.uint8 if bits <= 8 else np.uint16
    if array.dtype == bool:
        return (array.astype(storage) * max_value).astype(storage)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: float image contains NaN or inf values")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{name}: float image must lie in [0, 1], got range [{low:g}, {high:g}]")
        return np.round(array.astype(np.float64) * max_value).astype(storage)
    if np.issubdtype(array.dtype, np.integer):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > max_value:
            raise ValueError(f"{name}: integer values [{low}, {high}] do not fit in {bits} bits (0..{max_value})")
        return array.astype(storage)
    raise ValueError(f"{name}: unsupported dtype {array.dtype}; expected integers, bool or floats in [0, 1]")


def _check_2d(array: np.ndarray, name: str, allow_channels: tuple[int, ...] = ()) -> np.ndarray:
    array = np.asarray(array)
    ok_2d = array.ndim == 2
    ok_channels = array.ndim == 3 and array.shape[2] in allow_channels
    if not (ok_2d or ok_channels) or 0 in array.shape:
        allowed = "H x W" + "".join(f" or H x W x {c}" for c in allow_channels)
        raise ValueError(f"{name}: expected a non-empty {allowed} array, got shape {tuple(array.shape)}")
    return array


def _prepare_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_png(array: np.ndarray, path: str | os.PathLike, bit_depth: int = 8) -> Path:
    """Write an image as a lossless PNG.

    Args:
        array: ``(H, W)`` grey image (rows = y, columns = x); ``(H, W, 2)`` grey + alpha,
            ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA are accepted with ``bit_depth=8``. Integers
            (uint8, uint16, or any integer dtype within range) are stored unchanged; floats must lie
            in ``[0, 1]`` and are scaled to ``2**bit_depth - 1``; bool becomes 0 / max.
        path: destination file; parent folders are created.
        bit_depth: 8 or 16 (16 only for grey images).

    Returns:
        The written path.

    Raises:
        ValueError: wrong shape, bit depth, or values outside the representable range.
    """
    from PIL import Image

    if bit_depth not in (8, 16):
        raise ValueError(f"write_png: bit_depth must be 8 or 16, got {bit_depth}")
    array = _check_2d(array, "write_png", allow_channels=(2, 3, 4))
    if array.ndim == 3 and bit_depth != 8:
        raise ValueError(f"write_png: colour images ({array.shape[2]} channels) are written with bit_depth=8 only")
    data = _to_integer_image(array, bit_depth, "write_png")
    path = _prepare_path(path)
    if data.ndim == 2 and bit_depth == 16:
        image = Image.frombytes("I;16", (data.shape[1], data.shape[0]), data.astype("<u2").tobytes())
    else:
        mode = "L" if data.ndim == 2 else {2: "LA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
        image = Image.frombytes(mode, (data.shape[1], data.shape[0]), np.ascontiguousarray(data).tobytes())
    image.save(path, format="PNG")
    return path


def write_jpeg(array: np.ndarray, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an 8-bit grey or RGB image as a baseline JPEG (lossy).

    Args:
        array: ``(H, W)`` grey or ``(H, W, 3)`` RGB; uint8 values, or floats in ``[0, 1]``.
        path: destination file; parent folders are created.
        quality: JPEG quality, 1..100.

    Returns:
        The written path.

    Raises:
        ValueError: wrong shape, quality, or values outside the 8-bit range.
    """
    from PIL import Image

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"write_jpeg: quality must be in 1..100, got {quality}")
    array = _check_2d(array, "write_jpeg", allow_channels=(3,))
    data = np.ascontiguousarray(_to_integer_image(array, 8, "write_jpeg"))
    mode = "L" if data.ndim == 2 else "RGB"
    path = _prepare_path(path)
    Image.frombytes(mode, (data.shape[1], data.shape[0]), data.tobytes()).save(
        path, format="JPEG", quality=int(quality)
    )
    return path


def write_nifti(array: np.ndarray, path: str | os.PathLike, spacing: tuple[float, float] | None = None) -> Path:
    """Write a 2D image as NIfTI-1 (``.nii`` or gzip-compressed ``.nii.gz``, chosen by the suffix).

    NIfTI's first voxel axis ``i`` is image x (columns) and the second ``j`` is image y (rows), so
    the voxel array stored is ``array.T`` with shape ``(W, H)``; :class:`LoadRadiograph` transposes
    it back, so a pixel at ``array[r, c]`` is read back at ``image[0, r, c]``. The affine is
    ``diag(col_mm, row_mm, 1, 1)`` and ``pixdim[1:3] = (col_mm, row_mm)`` (no reorientation is
    implied: row 0 is the top of the image).

    Args:
        array: ``(H, W)`` float or integer image, written with its dtype (float64 is stored as float32).
        path: destination, ending in ``.nii`` or ``.nii.gz``; parent folders are created.
        spacing: ``(row_mm, col_mm)`` pixel spacing; ``None`` writes 1 mm.

    Returns:
        The written path.

    Raises:
        ValueError: not a 2D array, bad suffix, or non-positive / non-finite spacing.
    """
    import nibabel as nib

    array = _check_2d(array, "write_nifti")
    name = Path(path).name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ValueError(f"write_nifti: path must end in .nii or .nii.gz, got {Path(path).name!r}")
    row_mm, col_mm = _check_spacing(spacing, "write_nifti") if spacing is not None else (1.0, 1.0)
    data = array.T
    if data.dtype == np.float64 or data.dtype == np.float16:
        data = data.astype(np.float32)
    elif data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype == np.int64 or data.dtype == np.uint64:
        data = data.astype(np.int32)
    affine = np.diag([col_mm, row_mm, 1.0, 1.0])
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    image.header.set_xyzt_units("mm")
    image.header.set_zooms((col_mm, row_mm))
    path = _prepare_path(path)
    nib.save(image, str(path))
    return path


def _check_spacing(spacing: tuple[float, float], name: str) -> tuple[float, float]:
    values = tuple(float(v) for v in spacing)
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name}: spacing must be two positive finite numbers (row_mm, col_mm), got {spacing!r}")
    return values  # type: ignore[return-value]


def _deterministic_uid(seed: bytes, suffix: str) -> str:
    """A valid DICOM UID derived from ``seed`` (same input -> same file, byte for byte)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[hashlib.sha256(seed).hexdigest(), suffix])


def _dicom_stored_values(array: np.ndarray, bits_stored: int) -> np.ndarray:
    """Stored values for PixelData: unsigned 16 bit, or signed 16 bit for negative integers."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and int(array.min()) < 0:
        low, high = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
        if int(array.min()) < low or int(array.max()) > high:
            raise ValueError(
                f"write_dicom: signed values [{int(array.min())}, {int(array.max())}] do not fit in "
                f"bits_stored={bits_stored} ({low}..{high})"
            )
        return array.astype(np.int16)
    return _to_integer_image(array, bits_stored, "write_dicom").astype(np.uint16)


def _set_keywords(ds: Any, values: Mapping[str, Any], name: str, group: int | None = None) -> None:
    from pydicom.datadict import tag_for_keyword

    for keyword, value in values.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"write_dicom: {name} has an unknown DICOM keyword {keyword!r}")
        if group is not None and (tag >> 16) != group:
            raise ValueError(f"write_dicom: {name} keyword {keyword!r} is not a patient (group 0010) attribute")
        setattr(ds, keyword, value)


def write_dicom(
    array: np.ndarray,
    path: str | os.PathLike,
    *,
    spacing: tuple[float, float] | None = None,
    spacing_tag: str = "PixelSpacing",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    modality: str = "DX",
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    patient: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a single-frame, uncompressed (Explicit VR Little Endian) greyscale DICOM file with pydicom.

    The file has a 128-byte preamble, ``DICM`` and file meta information, and is readable by pydicom
    (2.4 and 3.x), ITK/GDCM and :class:`LoadRadiograph`. ``BitsAllocated`` is 16, ``HighBit`` is
    ``bits_stored - 1``; ``PixelRepresentation`` is 0 (unsigned) unless the array holds negative
    integers (then 1, two's complement). The SOP class is DX / CR / MG "for presentation" for those
    modalities and Secondary Capture otherwise. UIDs are derived from the pixel bytes and arguments,
    so the same call writes the same bytes. No dates, times or patient data are written except what
    ``patient`` gives (``PatientName`` and ``PatientID`` are present but empty, as type 2 requires).

    The stored values are written as given: for ``photometric="MONOCHROME1"`` pass the stored values
    of a MONOCHROME1 image (high = black), e.g. ``(2**bits_stored - 1) - values`` of a MONOCHROME2 one.

    Args:
        array: ``(H, W)`` stored values: unsigned integers below ``2**bits_stored`` (uint16 is
            typical), signed integers (negative values -> ``PixelRepresentation`` 1), or floats in
            ``[0, 1]`` scaled to ``2**bits_stored - 1``. Rows are image y, columns image x.
        path: destination file; parent folders are created.
        spacing: ``(row_mm, col_mm)``; written to ``spacing_tag`` when given.
        spacing_tag: ``"PixelSpacing"`` or ``"ImagerPixelSpacing"``.
        photometric: ``"MONOCHROME2"`` (0 = black) or ``"MONOCHROME1"`` (0 = white).
        bits_stored: 1..16.
        modality: DICOM Modality (``"DX"``, ``"CR"``, ``"MG"``, ``"OT"``, ...).
        rescale: ``(slope, intercept)`` -> RescaleSlope / RescaleIntercept (output = slope * stored + intercept).
        window: ``(center, width)`` -> WindowCenter / WindowWidth, in rescaled units.
        patient: group-0010 attributes by keyword, e.g. ``{"PatientName": "Doe^Jane", "PatientID": "123",
            "PatientBirthDate": "19700101"}`` (for de-identification tests; never put real data here).
        extra: further attributes by keyword, applied last (they may override anything above, e.g.
            ``{"Rows": 30000}`` to fake a header, or ``{"VOILUTSequence": [item]}``).

    Returns:
        The written path.

    Raises:
        ValueError: wrong shape, values outside ``bits_stored``, unknown keywords or bad arguments.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

    array = _check_2d(array, "write_dicom")
    if not 1 <= int(bits_stored) <= 16:
        raise ValueError(f"write_dicom: bits_stored must be in 1..16, got {bits_stored}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"write_dicom: photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    if spacing_tag not in ("PixelSpacing", "ImagerPixelSpacing"):
        raise ValueError(f"write_dicom: spacing_tag must be PixelSpacing or ImagerPixelSpacing, got {spacing_tag!r}")
    stored = _dicom_stored_values(array, int(bits_stored))
    signed = stored.dtype == np.int16
    pixel_bytes = np.ascontiguousarray(stored.astype("<i2" if signed else "<u2")).tobytes()
    seed = pixel_bytes + repr((spacing, spacing_tag, photometric, bits_stored, modality, rescale, window)).encode()
    sop_class = SOP_CLASS_UIDS.get(modality.upper(), _SECONDARY_CAPTURE_UID)
    sop_instance = _deterministic_uid(seed, "sop")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(_EXPLICIT_VR_LITTLE_ENDIAN)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = _deterministic_uid(seed, "study")
    ds.SeriesInstanceUID = _deterministic_uid(seed, "series")
    ds.Modality = modality
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PatientName = ""
    ds.PatientID = ""
    if patient:
        _set_keywords(ds, patient, "patient", group=_PATIENT_GROUP)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = int(bits_stored)
    ds.HighBit = int(bits_stored) - 1
    ds.PixelRepresentation = 1 if signed else 0
    if modality.upper() in SOP_CLASS_UIDS:
        ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    if spacing is not None:
        row_mm, col_mm = _check_spacing(spacing, "write_dicom")
        setattr(ds, spacing_tag, [f"{row_mm:.10g}", f"{col_mm:.10g}"])
    if rescale is not None:
        slope, intercept = rescale
        ds.RescaleSlope = f"{float(slope):.10g}"
        ds.RescaleIntercept = f"{float(intercept):.10g}"
        ds.RescaleType = "US"
    if window is not None:
        center, width = window
        ds.WindowCenter = f"{float(center):.10g}"
        ds.WindowWidth = f"{float(width):.10g}"
    ds.PixelData = pixel_bytes
    ds["PixelData"].VR = "OW"
    if extra:
        _set_keywords(ds, extra, "extra")

    path = _prepare_path(path)
    if int(pydicom.__version__.split(".")[0]) >= 3:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    else:  # pydicom 2.4: the encoding is taken from these flags
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        pydicom.dcmwrite(str(path), ds, write_like_original=False)
    return path
