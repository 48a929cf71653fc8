"""NIfTI-1 / NIfTI-2 radiographs (``.nii``, ``.nii.gz``): a 2D image, or 3D/4D with singleton axes.

Orientation convention (the inverse of :func:`radlas_monai.data.writers.write_nifti`): of the
voxel axes, the two that are not singletons are, in order, image x (columns) and image y (rows),
so the returned pixels are the squeezed voxel array transposed: ``pixels[row, col] =
voxels[col, row]``. The affine is *not* used to reorient; ``pixdim`` of those two axes gives the
spacing (``(row_mm, col_mm)``; the spatial unit in ``xyzt_units`` is honoured, unknown means mm).

The header is parsed (with nibabel's header classes) and checked before any voxel data is read or,
for ``.nii.gz``, decompressed: shape, ``max_pixels`` and the file length (truncation). Gzip data is
inflated only up to the bytes the header declares, so a gzip bomb cannot exhaust memory.

Intensity: ``scl_slope`` / ``scl_inter`` are applied; then uint8 data is windowed by ``(0, 255)``,
uint16 data like a 16-bit PNG (see :mod:`.raster`), float data already inside ``[0, 1]`` by
``(0, 1)`` (so the project's own float images round-trip unchanged), and anything else by the
robust percentile window.
"""

from __future__ import annotations

import zlib

import numpy as np

from radlas_monai.data.errors import (
    InvalidPixelDataError,
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
from radlas_monai.data.readers.detect import gunzip_head
from radlas_monai.data.readers.raster import RasterHeader, window_16bit
from radlas_monai.data.readers.window import bit_depth_window

__all__ = ["read_nifti", "nifti_header"]

#: mm per unit of NIfTI ``xyzt_units`` spatial codes (0 = unknown, read as mm).
_UNIT_TO_MM = {"unknown": 1.0, "meter": 1000.0, "mm": 1.0, "micron": 0.001}


def nifti_header(path: str, head: bytes):
    """Parse a NIfTI-1 or NIfTI-2 header from the first bytes of the (decompressed) file.

    Raises:
        TruncatedFileError: fewer bytes than the header size.
        UnsupportedFormatError: nibabel rejects the header.
    """
    import nibabel as nib

    size = 540 if head[4:8] in (b"n+2\x00", b"ni2\x00") else 348
    if len(head) < size:
        raise TruncatedFileError(path, f"NIfTI file ends inside its {size}-byte header")
    header_class = nib.Nifti2Header if size == 540 else nib.Nifti1Header
    try:
        return header_class(binaryblock=head[:size], check=True)
    except Exception as err:  # nibabel raises HeaderDataError / ValueError subclasses
        raise UnsupportedFormatError(path, f"invalid NIfTI header ({type(err).__name__}: {err})") from None


def _image_axes(path: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Indices of the x and y axes: the two non-singleton axes of at most a 4D shape."""
    axes = [i for i, n in enumerate(shape) if n != 1]
    if len(shape) > 4 or len(axes) != 2:
        raise NotA2DImageError(
            path, f"NIfTI data shape {tuple(shape)} is not a 2D image (need exactly two axes longer than 1)"
        )
    return axes[0], axes[1]


def _voxel_bytes(path: str, data: bytes, compressed: bool, needed: int) -> bytes:
    """The first ``needed`` bytes of the (decompressed) file; TruncatedFileError when shorter."""
    if compressed:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, needed)
        except zlib.error as err:
            raise InvalidPixelDataError(path, f"gzip data of the NIfTI file is corrupt ({err})") from None
    else:
        raw = data[:needed]
    if len(raw) < needed:
        raise TruncatedFileError(path, f"NIfTI voxel data ends early: {len(raw)} of {needed} bytes present")
    return raw


def _spacing(header, x_axis: int, y_axis: int, warn: WarnFn, path: str) -> tuple[float, float] | None:
    zooms = header.get_zooms()
    unit = header.get_xyzt_units()[0]
    scale = _UNIT_TO_MM.get(unit, 1.0)
    row_mm, col_mm = float(zooms[y_axis]) * scale, float(zooms[x_axis]) * scale
    if not all(np.isfinite(v) and v > 0 for v in (row_mm, col_mm)):
        warn("spacing", f"{path}: NIfTI pixdim is zero, negative or not finite; spacing left unset")
        return None
    return row_mm, col_mm


def read_nifti(path: str, data: bytes, compressed: bool, options: ReadOptions, warn: WarnFn) -> DecodedImage:
    """Decode a NIfTI file's bytes (plain, or gzip when ``compressed``).

    Args:
        path: the file, for messages.
        data: the file's bytes.
        compressed: whether ``data`` is gzip.
        options: reader options.
        warn: warning callback.

    Returns:
        The decoded image in the project convention.

    Raises:
        NotA2DImageError: more than two non-singleton axes.
        ImageTooLargeError: header dims above ``max_pixels`` (before reading voxels).
        TruncatedFileError: the file (or gzip stream) ends before the voxel data does.
        UnsupportedFormatError: invalid header or a non-scalar data type (e.g. RGB).
        InvalidPixelDataError: corrupt gzip data, all non-finite or constant voxels.
    """
    head = gunzip_head(data, 544) if compressed else data[:544]
    header = nifti_header(path, head)
    shape = tuple(int(n) for n in header.get_data_shape())
    x_axis, y_axis = _image_axes(path, shape)
    check_pixel_count(path, shape[y_axis], shape[x_axis], options.max_pixels)
    dtype = header.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "uif":
        raise UnsupportedFormatError(path, f"NIfTI data type {dtype} is not a scalar grey image")
    offset = int(header.get_data_offset())
    count = int(np.prod(shape))
    raw = _voxel_bytes(path, data, compressed, offset + count * dtype.itemsize)
    voxels = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape, order="F")
    values = np.squeeze(voxels).T  # (x, y) -> (rows = y, cols = x)
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope != 1.0 or (inter or 0.0) != 0.0):
        values = values.astype(np.float64) * float(slope) + float(inter or 0.0)
    values = np.ascontiguousarray(values)
    values, nonfinite = clean_values(path, values, options, warn)
    window, bits = _nifti_window(values, options)
    pixels, window = window_and_normalize(path, values, window, options, warn)
    return DecodedImage(
        pixels=pixels,
        source_format="nifti",
        window=window,
        photometric_interpretation="MONOCHROME2",
        bits_stored=bits,
        spacing=_spacing(header, x_axis, y_axis, warn, path),
        nonfinite_pixels=nonfinite,
        decoder="nibabel",
    )


def _nifti_window(values: np.ndarray, options: ReadOptions) -> tuple[tuple[float, float] | None, int]:
    if values.dtype == np.uint8:
        return bit_depth_window(8), 8
    if values.dtype == np.uint16:
        height, width = values.shape
        return window_16bit(values, RasterHeader(width, height, 16, "grey"), options)
    bits = values.dtype.itemsize * 8
    if values.dtype.kind == "f" and values.size and values.min() >= 0.0 and values.max() <= 1.0:
        return (0.0, 1.0), bits
    return None, bits
