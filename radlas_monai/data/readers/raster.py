"""PNG and JPEG radiographs, decoded with Pillow after a structural check of the file.

Before anything is decoded, the file's structure is walked by hand: the PNG chunk list (IHDR ...
IEND) or the JPEG marker segments (SOI ... SOF ... SOS ... EOI). This gives the image size from the
header (for the ``max_pixels`` guard, so a 10000 x 10000 PNG of a few kilobytes is rejected without
allocating it) and detects truncated files *independently of Pillow's process-wide
``ImageFile.LOAD_TRUNCATED_IMAGES`` switch*, which this module never reads or changes: a truncated
JPEG that Pillow would silently fill with grey when that switch is on is still rejected here.

Intensity: 8-bit data is windowed by ``(0, 255)``. 16-bit PNG data is windowed according to
``ReadOptions.window_16bit``:

* ``"bits"`` (default): ``(0, 2**b - 1)`` where ``b`` is the PNG ``sBIT`` significant bits when the
  file has that chunk, else the smallest of 8 / 10 / 12 / 14 / 16 bits that holds the image maximum
  (12-bit detector data in a 16-bit PNG is divided by 4095, not 65535);
* ``"full"``: ``(0, 65535)``;
* ``"percentile"``: the robust percentile window of ``ReadOptions.percentiles``.

Colour images (RGB, RGBA, grey + alpha, palette, CMYK) are reduced to grey by ITU-R BT.601
luminance; alpha is ignored. EXIF orientation is not applied: rows and columns are the stored grid.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from radlas_monai.data.errors import (
    ImageTooLargeError,
    InvalidPixelDataError,
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
from radlas_monai.data.readers.window import bit_depth_window, effective_bit_depth, luminance

__all__ = ["RasterHeader", "png_header", "jpeg_header", "read_raster", "window_16bit"]

_PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
#: JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8 and DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class RasterHeader:
    """Facts read from a PNG / JPEG header without decoding.

    Attributes:
        width: columns.
        height: rows.
        bit_depth: bits per sample.
        color: ``"grey"``, ``"RGB"``, ``"palette"``, ... (PNG) or the number of components (JPEG).
        significant_bits: PNG ``sBIT`` of the grey channel, when present.
    """

    width: int
    height: int
    bit_depth: int
    color: str
    significant_bits: int | None = None


def png_header(path: str, data: bytes, max_pixels: int) -> RasterHeader:
    """Validate the PNG chunk structure and return its IHDR facts.

    Raises:
        ImageTooLargeError: IHDR declares more than ``max_pixels`` pixels (checked first).
        TruncatedFileError: a chunk runs past the end of the file, or there is no IEND.
        UnsupportedFormatError: no valid IHDR chunk.
        InvalidPixelDataError: IHDR declares a zero width or height.
    """
    if len(data) < 33:
        raise TruncatedFileError(path, f"PNG file of {len(data)} bytes ends inside its IHDR header")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise UnsupportedFormatError(path, "PNG signature present but the first chunk is not a valid IHDR")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    if width == 0 or height == 0:
        raise InvalidPixelDataError(path, f"PNG header declares an empty image ({height} x {width})")
    check_pixel_count(path, height, width, max_pixels)
    significant_bits, pos, end = None, 33, len(data)
    while True:
        if pos + 12 > end:
            raise TruncatedFileError(path, f"PNG file ends after {end} bytes, before its IEND chunk")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if pos + 12 + length > end:
            raise TruncatedFileError(
                path, f"PNG chunk {ctype.decode('latin-1')!r} needs {length} bytes, the file ends after {end - pos - 8}"
            )
        if ctype == b"sBIT" and length >= 1 and color_type in (0, 4):
            significant_bits = data[pos + 8]
        if ctype == b"IEND":
            break
        pos += 12 + length
    return RasterHeader(width, height, bit_depth, _PNG_COLOR_TYPES.get(color_type, str(color_type)), significant_bits)


def _skip_entropy_coded_data(path: str, data: bytes, pos: int) -> int:
    """Return the position of the marker that ends the entropy-coded segment starting at ``pos``."""
    end = len(data)
    while True:
        index = data.find(b"\xff", pos)
        if index < 0 or index + 1 >= end:
            raise TruncatedFileError(path, f"JPEG file ends inside its compressed image data ({end} bytes, no EOI)")
        following = data[index + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = index + 1
            continue
        return index


def jpeg_header(path: str, data: bytes, max_pixels: int) -> RasterHeader:
    """Walk the JPEG marker segments up to EOI and return the frame header facts.

    Raises:
        ImageTooLargeError: the SOF header declares more than ``max_pixels`` pixels (checked as soon
            as the SOF segment is read, before the compressed data).
        TruncatedFileError: a segment or the compressed data runs past the end, or there is no EOI.
        UnsupportedFormatError: a malformed marker or no frame header.
        InvalidPixelDataError: the frame declares a zero width or height.
    """
    pos, end, header = 2, len(data), None
    while True:
        while pos < end and data[pos] == 0xFF and pos + 1 < end and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > end:
            raise TruncatedFileError(path, f"JPEG file ends after {end} bytes, before its EOI marker")
        if data[pos] != 0xFF:
            raise UnsupportedFormatError(path, f"malformed JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > end:
            raise TruncatedFileError(path, f"JPEG file ends inside a marker segment at byte {pos}")
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if pos + 2 + length > end:
            raise TruncatedFileError(path, f"JPEG marker segment at byte {pos} runs past the end of the file")
        if marker in _SOF_MARKERS and length >= 8:
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            if width == 0 or height == 0:
                raise InvalidPixelDataError(path, f"JPEG frame header declares an empty image ({height} x {width})")
            check_pixel_count(path, height, width, max_pixels)
            header = RasterHeader(width, height, precision, str(components))
        pos += 2 + length
        if marker == 0xDA:
            if header is None:
                raise UnsupportedFormatError(path, "malformed JPEG: compressed data before a frame header")
            pos = _skip_entropy_coded_data(path, data, pos)
    if header is None:
        raise UnsupportedFormatError(path, "JPEG file has no frame header (SOF)")
    return header


def _decode_with_pillow(path: str, data: bytes, kind: str):
    """Open and fully decode with Pillow, mapping its exceptions onto typed errors."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data), formats=[kind.upper()])
        image.load()
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            path, "Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS) rejects it"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        if "truncated" in str(err).lower():
            raise TruncatedFileError(path, f"{kind.upper()} pixel data ends early ({err})") from None
        raise InvalidPixelDataError(
            path, f"{kind.upper()} pixel data cannot be decoded ({type(err).__name__}: {err})"
        ) from None
    return image


def _grey_values(image) -> tuple[np.ndarray, str, int]:
    """(values, photometric, nominal bits) of a decoded Pillow image, reduced to grey."""
    mode = image.mode
    if mode == "1":
        return np.asarray(image, dtype=np.uint8), "MONOCHROME2", 1
    if mode == "L":
        return np.asarray(image), "MONOCHROME2", 8
    if mode.startswith("I;16") or mode == "I":
        return np.asarray(image).astype(np.int64 if mode == "I" else np.uint16), "MONOCHROME2", 16
    if mode in ("LA", "La"):
        return np.asarray(image)[..., 0], "MONOCHROME2", 8
    if mode in ("P", "PA"):
        return luminance(np.asarray(image.convert("RGBA"))), "PALETTE COLOR", 8
    photometric = "RGB" if mode in ("RGB", "RGBA", "RGBa", "RGBX") else mode
    return luminance(np.asarray(image.convert("RGB"))), photometric, 8


def read_raster(path: str, data: bytes, kind: str, options: ReadOptions, warn: WarnFn) -> DecodedImage:
    """Decode a PNG (``kind="png"``) or JPEG (``kind="jpeg"``) file's bytes.

    Args:
        path: the file, for messages.
        data: the file's bytes.
        kind: ``"png"`` or ``"jpeg"`` (from :func:`~radlas_monai.data.readers.detect.detect_format`).
        options: reader options.
        warn: warning callback.

    Returns:
        The decoded image in the project convention.

    Raises:
        RadiographReadError: a typed subclass for every failure (see :func:`png_header`,
            :func:`jpeg_header`), e.g. ``TruncatedFileError`` or ``ImageTooLargeError``.
    """
    header = (png_header if kind == "png" else jpeg_header)(path, data, options.max_pixels)
    image = _decode_with_pillow(path, data, kind)
    values, photometric, bits = _grey_values(image)
    if values.shape != (header.height, header.width):
        raise InvalidPixelDataError(path, f"decoded shape {values.shape} differs from the header's")
    values, _ = clean_values(path, values, options, warn)
    window = bit_depth_window(bits)
    if bits == 16:
        window, bits = window_16bit(values, header, options)
    pixels, window = window_and_normalize(path, values, window, options, warn)
    return DecodedImage(
        pixels=pixels,
        source_format=kind,
        window=window,
        photometric_interpretation=photometric,
        bits_stored=bits,
        decoder="pillow",
    )


def window_16bit(
    values: np.ndarray, header: RasterHeader, options: ReadOptions
) -> tuple[tuple[float, float] | None, int]:
    """The window of 16-bit data and its significant bits, per ``options.window_16bit``.

    Returns:
        ``(window, bits)``; ``window`` is ``None`` for ``"percentile"`` (computed later).
    """
    if options.window_16bit == "full":
        return bit_depth_window(16), 16
    if header.significant_bits and 1 <= header.significant_bits <= 16:
        bits = int(header.significant_bits)
    else:
        bits = effective_bit_depth(float(values.max()) if values.size else 0.0)
    if options.window_16bit == "percentile":
        return None, bits
    return bit_depth_window(bits), bits
