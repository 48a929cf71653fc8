"""Radiograph readers: format detection by content, per-format decoding, and the intensity convention.

Every reader returns float32 ``H x W`` pixels in ``[0, 1]`` (MONOCHROME2, rows = image y) and raises
the typed errors of :mod:`radlas_monai.data.errors`. Most users want
:class:`radlas_monai.data.loader.LoadRadiograph`; :func:`read_radiograph` is the same without MONAI.

Modules: :mod:`.detect` (magic bytes), :mod:`.dicom` + :mod:`.dicom_intensity`, :mod:`.raster`
(PNG / JPEG), :mod:`.nifti`, :mod:`.window` (the intensity convention, ``normalize_to_unit``),
:mod:`.base` (options and result type), :mod:`.dispatch` (``read_radiograph``).
"""

from __future__ import annotations

from radlas_monai.data.readers.base import DEFAULT_MAX_PIXELS, DecodedImage, ReadOptions
from radlas_monai.data.readers.detect import SUPPORTED_FORMATS, FormatInfo, detect_format
from radlas_monai.data.readers.dispatch import image_id_of, read_radiograph
from radlas_monai.data.readers.window import DEFAULT_PERCENTILES, normalize_to_unit, percentile_window

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PERCENTILES",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "FormatInfo",
    "ReadOptions",
    "detect_format",
    "image_id_of",
    "normalize_to_unit",
    "percentile_window",
    "read_radiograph",
]
