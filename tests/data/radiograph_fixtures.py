"""Helpers that write good and bad radiograph files for the reader / loader tests (into tmp_path only).

Bad files are built from valid ones written by :mod:`radlas_monai.data.writers`, then patched at the
byte level (truncation, forged header sizes, NaN header values, fake compressed pixel data), so the
tests do not depend on any data file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from radlas_monai.data.writers import write_dicom, write_jpeg, write_png

PYDICOM_MAJOR = int(pydicom.__version__.split(".")[0])
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000 = "1.2.840.10008.1.2.4.90"


def asymmetric_image(height: int = 24, width: int = 32, high: int = 4000, low: int = 100) -> np.ndarray:
    """uint16 image: a smooth ramp on ``low`` with one bright pixel at (row 2, col 7)."""
    rows, cols = np.mgrid[0:height, 0:width]
    image = low + (rows * 7 + cols * 3) % 50
    image[2, 7] = high
    return image.astype(np.uint16)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, idat: bytes | None = None, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A PNG file whose IHDR declares ``width x height``; the IDAT is a small zlib stream unless given.

    With a huge ``width x height`` this is a decompression bomb header of a few hundred bytes.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncate_copy(source: Path, target: Path, keep: float | int) -> Path:
    """Copy the first ``keep`` bytes (int) or fraction of bytes (float) of ``source`` to ``target``."""
    data = source.read_bytes()
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    return write_bytes(target, data[:size])


def patch_once(path: Path, old: bytes, new: bytes) -> Path:
    """Replace the single occurrence of ``old`` by ``new`` (same length) in the file."""
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new), (data.count(old), len(old), len(new))
    return write_bytes(path, data.replace(old, new))


def dicom_element_bytes(group: int, element: int, vr: str, value: bytes) -> bytes:
    """Explicit VR little endian encoding of a short element (for locating / patching it)."""
    return struct.pack("<HH", group, element) + vr.encode() + struct.pack("<H", len(value)) + value


def jpeg_with_sof_size(path: Path, height: int, width: int) -> Path:
    """Write a small JPEG, then forge its SOF0 frame header to declare ``height x width``."""
    write_jpeg(np.full((16, 16), 128, dtype=np.uint8), path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return write_bytes(path, bytes(data))


def save_dataset(ds, path: Path) -> Path:
    """Save a modified pydicom dataset with pydicom 2.4 or 3."""
    if PYDICOM_MAJOR >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path


def fake_compressed_dicom(path: Path, transfer_syntax: str) -> Path:
    """An uncompressed DICOM relabelled with a compressed transfer syntax and garbage encapsulated frames."""
    source = write_dicom(asymmetric_image(), path)
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.PixelData = encapsulate([bytes(range(256)) * 4])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return save_dataset(ds, path)


def drop_preamble(source: Path, target: Path) -> Path:
    """Write the dataset of ``source`` without preamble, ``DICM`` and file meta (implicit VR, as legacy files)."""
    ds = pydicom.dcmread(source)
    del ds.file_meta
    ds.preamble = None
    if PYDICOM_MAJOR >= 3:
        pydicom.dcmwrite(target, ds, implicit_vr=True, little_endian=True)
    else:
        ds.is_little_endian, ds.is_implicit_VR = True, True
        pydicom.dcmwrite(str(target), ds, write_like_original=True)
    assert target.read_bytes()[128:132] != b"DICM"
    return target


def write_rgb_png(path: Path, image: np.ndarray, alpha: bool = False) -> Path:
    """Write a grey uint8 image as RGB(A) with equal channels (luminance = the grey value)."""
    channels = [image] * 3 + ([np.full_like(image, 77)] if alpha else [])
    return write_png(np.stack(channels, axis=-1), path)


def voi_lut_item(first: int, lut: np.ndarray, vr: str = "US"):
    """A VOI / Modality LUT Sequence item mapping stored values ``first ..`` through ``lut`` (16-bit entries)."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.add_new(0x00283002, "US", [len(lut) % 65536, first, 16])  # LUTDescriptor
    values = [int(v) for v in lut]
    item.add_new(0x00283006, vr, values if vr == "US" else np.asarray(values, dtype="<u2").tobytes())  # LUTData
    return item


def colour_dicom(path: Path, rgb: np.ndarray, photometric: str = "RGB") -> Path:
    """An 8-bit 3-sample DICOM (RGB, interleaved) built from a grey file's header."""
    ds = pydicom.dcmread(write_dicom(rgb[..., 0].astype(np.uint16), path))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, photometric, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    return save_dataset(ds, path)
