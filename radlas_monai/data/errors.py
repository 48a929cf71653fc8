"""Typed errors for radiograph files that cannot be turned into a clean tensor.

Every error names the file and a human-readable reason, so that a skipped-file report and a log
line say what went wrong without a stack trace from deep inside a reader::

    try:
        image = LoadRadiograph()(path)
    except RadiographReadError as err:
        print(err.path, err.reason)
"""

from __future__ import annotations

import os

__all__ = [
    "RadiographReadError",
    "EmptyFileError",
    "TruncatedFileError",
    "UnsupportedFormatError",
    "MissingDecoderError",
    "ImageTooLargeError",
    "NotA2DImageError",
    "InvalidPixelDataError",
    "MissingFileError",
]


class RadiographReadError(Exception):
    """A radiograph file could not be read as a 2D image.

    Args:
        path: the file that failed.
        reason: why it failed, in words a user can act on.

    Attributes:
        path: the file that failed, as a string.
        reason: the reason, without the path.
        kind: a short stable code for reports (``"empty"``, ``"truncated"``, ...).
    """

    kind = "unreadable"

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the (path, reason) signature picklable across DataLoader workers
        return (type(self), (self.path, self.reason))


class EmptyFileError(RadiographReadError):
    """The file has zero bytes."""

    kind = "empty"


class TruncatedFileError(RadiographReadError):
    """The file ends before its pixel data does."""

    kind = "truncated"


class UnsupportedFormatError(RadiographReadError):
    """The file is not DICOM, PNG, JPEG or NIfTI (whatever its suffix says), or has no image."""

    kind = "unsupported_format"


class MissingDecoderError(RadiographReadError):
    """The pixel data is compressed with a codec for which no decoder plugin is installed."""

    kind = "missing_decoder"


class ImageTooLargeError(RadiographReadError):
    """The header declares more pixels than allowed (decompression-bomb guard), checked before decoding."""

    kind = "too_large"


class NotA2DImageError(RadiographReadError):
    """Multi-frame, 3D or otherwise not a single 2D radiograph."""

    kind = "not_2d"


class InvalidPixelDataError(RadiographReadError):
    """The pixels carry no usable image: constant, all non-finite, or a corrupt rescale."""

    kind = "invalid_pixels"


class MissingFileError(RadiographReadError):
    """The datalist names a file that does not exist (or is not a regular file)."""

    kind = "missing"
