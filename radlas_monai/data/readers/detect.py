"""Identify a radiograph file by its content (magic bytes), never by its suffix alone.

Supported formats: ``"dicom"`` (``DICM`` at offset 128, or a preamble-less dataset),
``"png"``, ``"jpeg"`` and ``"nifti"`` (NIfTI-1/2 single file, plain or gzip-compressed).
Everything else is named so that an :class:`~radlas_monai.data.errors.UnsupportedFormatError`
can say what the file really is (``"TIFF"``, ``"BMP"``, ...).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["SUPPORTED_FORMATS", "FormatInfo", "detect_format", "gunzip_head"]

#: Formats :class:`~radlas_monai.data.loader.LoadRadiograph` decodes.
SUPPORTED_FORMATS = ("dicom", "png", "jpeg", "nifti")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Known but unsupported signatures, checked in order: (prefix, offset, name).
_OTHER_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "BigTIFF"),
    (b"MM\x00+", 0, "BigTIFF"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000 (JP2)"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000 codestream"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"%PDF", 0, "PDF"),
    (b"PK\x03\x04", 0, "ZIP archive"),
    (b"\x89HDF\r\n\x1a\n", 0, "HDF5"),
    (b"\x93NUMPY", 0, "NumPy .npy"),
    (b"NRRD", 0, "NRRD"),
    (b"ObjectType", 0, "MetaImage (.mha)"),
    (b"8BPS", 0, "Photoshop PSD"),
    (b"BZh", 0, "bzip2"),
    (b"\xfd7zXZ\x00", 0, "xz"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd"),
    (b"BM", 0, "BMP"),
)
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
_NIFTI1_MAGICS = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGICS = (b"n+2\x00", b"ni2\x00")


@dataclass(frozen=True)
class FormatInfo:
    """What :func:`detect_format` found.

    Attributes:
        format: one of :data:`SUPPORTED_FORMATS`, or a human-readable name of an unsupported
            format (``"TIFF"``, ``"gzip (not NIfTI)"``, ``"unknown"``).
        supported: whether ``format`` is in :data:`SUPPORTED_FORMATS`.
        compressed: gzip-compressed NIfTI.
        dicom_preamble: DICOM with the 128-byte preamble and ``DICM`` (False: raw dataset).
        detail: extra words for error messages (e.g. "NIfTI .hdr/.img pair").
    """

    format: str
    supported: bool
    compressed: bool = False
    dicom_preamble: bool = True
    detail: str = ""


def gunzip_head(data: bytes, size: int) -> bytes:
    """Decompress at most ``size`` bytes from the start of gzip ``data`` (b"" when not valid gzip)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, size)
    except zlib.error:
        return b""


def _nifti_kind(head: bytes) -> str:
    """``"nifti"``, ``"nifti-pair"`` or ``""`` for the first bytes of an uncompressed file."""
    if len(head) >= 348:
        for endian in "<>":
            if struct.unpack(f"{endian}i", head[:4])[0] == 348 and head[344:348] in _NIFTI1_MAGICS:
                return "nifti" if head[344:348] == b"n+1\x00" else "nifti-pair"
    if len(head) >= 8 and head[4:8] in _NIFTI2_MAGICS:
        for endian in "<>":
            if struct.unpack(f"{endian}i", head[:4])[0] == 540:
                return "nifti" if head[4:8] == b"n+2\x00" else "nifti-pair"
    return ""


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A preamble-less dataset usually starts with a group 0002 or 0008 element (little endian)."""
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    return group in (0x0002, 0x0008) and element < 0x0100


def detect_format(data: bytes, suffix: str = "") -> FormatInfo:
    """Identify the format of file content.

    The suffix is only used to allow a DICOM dataset *without* preamble (which has no magic bytes)
    to be tried for ``.dcm`` / ``.dicom`` / ``.dic`` files; the caller must still parse it.

    Args:
        data: the file's bytes (at least the first 64 KiB).
        suffix: the file's suffix, lower case (e.g. ``".dcm"``, ``".gz"``).

    Returns:
        A :class:`FormatInfo`.
    """
    suffix = suffix.lower()
    if len(data) >= 132 and data[128:132] == b"DICM":
        return FormatInfo("dicom", True)
    if data.startswith(_PNG_SIGNATURE):
        return FormatInfo("png", True)
    if data.startswith(b"\xff\xd8\xff"):
        return FormatInfo("jpeg", True)
    kind = _nifti_kind(data[:544])
    if kind == "nifti":
        return FormatInfo("nifti", True)
    if kind == "nifti-pair":
        return FormatInfo("NIfTI header of a .hdr/.img pair", False, detail="convert the pair to a single .nii file")
    if data.startswith(b"\x1f\x8b"):
        kind = _nifti_kind(gunzip_head(data, 544))
        if kind == "nifti":
            return FormatInfo("nifti", True, compressed=True)
        return FormatInfo("gzip (not NIfTI)", False)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return FormatInfo("WebP", False)
    for signature, offset, name in _OTHER_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return FormatInfo(name, False)
    if suffix in _DICOM_SUFFIXES or _looks_like_raw_dicom(data):
        return FormatInfo("dicom", True, dicom_preamble=False)
    return FormatInfo("unknown", False)
