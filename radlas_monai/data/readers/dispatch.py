"""Read one radiograph file: bytes -> format by content -> the format's reader -> :class:`DecodedImage`.

This is the function behind :class:`~radlas_monai.data.loader.LoadRadiograph`, usable without
MONAI transforms (e.g. by dataset-scanning scripts that want the typed errors and the decoded array).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from radlas_monai.data.errors import EmptyFileError, ImageTooLargeError, RadiographReadError, UnsupportedFormatError
from radlas_monai.data.readers.base import DecodedImage, ReadOptions, WarnFn
from radlas_monai.data.readers.detect import detect_format
from radlas_monai.data.readers.dicom import read_dicom
from radlas_monai.data.readers.nifti import read_nifti
from radlas_monai.data.readers.raster import read_raster

__all__ = ["read_radiograph", "image_id_of", "MAX_BYTES_PER_PIXEL", "FILE_SIZE_SLACK"]

logger = logging.getLogger(__name__)

#: A file larger than ``max_pixels * MAX_BYTES_PER_PIXEL + FILE_SIZE_SLACK`` bytes cannot hold an
#: allowed 2D image (uncompressed 64-bit pixels plus headers) and is rejected before it is read.
MAX_BYTES_PER_PIXEL = 8
FILE_SIZE_SLACK = 64 * 1024 * 1024


def image_id_of(data: bytes) -> str:
    """The non-identifying image id: the first 16 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


def _read_bytes(path: str, max_pixels: int) -> bytes:
    try:
        size = os.stat(path).st_size
        if size > int(max_pixels) * MAX_BYTES_PER_PIXEL + FILE_SIZE_SLACK:
            raise ImageTooLargeError(path, f"file of {size} bytes is larger than any image within max_pixels could be")
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise RadiographReadError(path, "file does not exist") from None
    except OSError as err:
        raise RadiographReadError(path, f"file cannot be read ({type(err).__name__}: {err.strerror})") from None
    if not data:
        raise EmptyFileError(path, "file has zero bytes")
    return data


def _suffix(path: str) -> str:
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_radiograph(
    path: str | os.PathLike, options: ReadOptions | None = None, warn: WarnFn | None = None
) -> DecodedImage:
    """Read one 2D radiograph (DICOM, PNG, JPEG or NIfTI, identified by content).

    Args:
        path: the file.
        options: reader options (defaults: :class:`ReadOptions`).
        warn: ``warn(kind, message)`` callback for recoverable problems; default logs a warning.

    Returns:
        The decoded image: float32 ``(H, W)`` in ``[0, 1]``, MONOCHROME2, rows = y, with facts.

    Raises:
        EmptyFileError: zero bytes.
        UnsupportedFormatError: not one of the four formats (the message names what it is).
        RadiographReadError: the file is missing / unreadable, or any typed subclass from a reader
            (truncated, too large, not 2D, missing decoder, invalid pixels).
    """
    path = os.fspath(path)
    options = options or ReadOptions()
    warn = warn or (lambda kind, message: logger.warning(message))
    data = _read_bytes(path, options.max_pixels)
    info = detect_format(data[:65536], _suffix(path))
    if not info.supported:
        detail = f"; {info.detail}" if info.detail else ""
        raise UnsupportedFormatError(
            path, f"content is {info.format}, not DICOM, PNG, JPEG or NIfTI (the file name is ignored){detail}"
        )
    if info.format == "dicom":
        decoded = read_dicom(path, data, info.dicom_preamble, options, warn)
    elif info.format == "nifti":
        decoded = read_nifti(path, data, info.compressed, options, warn)
    else:
        decoded = read_raster(path, data, info.format, options, warn)
    decoded.image_id = image_id_of(data)
    return decoded
