"""The bad-file corpus of the reliability campaign (issue 9, case 1), generated into a folder by the tests.

Every entry is a file that a user, a scanner export or a hostile client could hand to the product, with the
behaviour the product promises for it: either a typed :class:`~radlas_monai.data.errors.RadiographReadError`
of a given ``kind`` (the file is skipped and reported), or ``ACCEPTED`` (a documented acceptance: the file loads
as the project's tensor, e.g. RGB reduced to grey, isolated NaN pixels replaced and counted, missing spacing left
out). The files are built from the byte-level helpers of ``tests/data/radiograph_fixtures.py`` (so the unit tests
and the campaign forge bad files the same way) and are all tiny, except that two of them *declare* huge images.

Example::

    entries = build_corpus(tmp_path / "corpus")
    for entry in entries:
        entry.path, entry.expected, entry.note
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from radiograph_fixtures import (
    JPEG_2000,
    JPEG_LOSSLESS,
    JPEG_LS_LOSSLESS,
    asymmetric_image,
    dicom_element_bytes,
    fake_compressed_dicom,
    patch_once,
    png_bytes,
    png_chunk,
    save_dataset,
    truncate_copy,
    write_bytes,
    write_rgb_png,
)

from radlas_monai.data.writers import write_dicom, write_jpeg, write_nifti, write_png

__all__ = ["ACCEPTED", "SUPPORTED_SUFFIXES", "CorpusFile", "build_corpus", "good_radiograph", "png_decoding_to"]

#: ``CorpusFile.expected`` of a file the product loads (a documented acceptance).
ACCEPTED = "accepted"
#: every suffix the loader and the folder datalists treat as a radiograph.
SUPPORTED_SUFFIXES = (".dcm", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")
#: decoder-less compressed DICOM: ``missing_decoder``, or ``invalid_pixels`` where a plugin decodes the garbage.
_NO_DECODER = frozenset({"missing_decoder", "invalid_pixels"})


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus.

    Attributes:
        name: stable case name (also the test id).
        path: the file.
        expected: the accepted error kinds (``frozenset`` of ``RadiographReadError.kind``), or ``{ACCEPTED}``.
        note: what the file is, and for errors a word the reason must contain (``reason_has``).
        reason_has: a lower-case word the error's reason must contain ("" when any reason will do).
    """

    name: str
    path: Path
    expected: frozenset
    note: str
    reason_has: str = ""

    @property
    def accepted(self) -> bool:
        """The product promises to load this file."""
        return ACCEPTED in self.expected


def good_radiograph(height: int = 48, width: int = 40, seed: int = 0) -> np.ndarray:
    """A non-constant float image in [0, 1] (rows = y) that every reader accepts."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = np.random.default_rng(seed).random((height, width), dtype=np.float32)
    return np.clip(0.2 + 0.5 * rows / height + 0.2 * cols / width + 0.1 * noise, 0.0, 1.0).astype(np.float32)


def png_decoding_to(width: int, height: int, ramp: bool = False) -> bytes:
    """A real, *valid* 8-bit grey PNG of ``width x height`` zeros (``ramp``: every row ``0, 1, .., 255, 0, ..``):
    a few hundred KB that inflate to ``w * h`` bytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + (bytes(range(256)) * (width // 256 + 1))[:width] if ramp else b"\x00" * (width + 1)
    chunks = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(chunks) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def _pil_bytes(image: np.ndarray, pil_format: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=pil_format)
    return buffer.getvalue()


def _empty_and_random(folder: Path) -> list[CorpusFile]:
    """Zero bytes and random bytes under every supported suffix."""
    entries = []
    for index, suffix in enumerate(SUPPORTED_SUFFIXES):
        stem = suffix.strip(".").replace(".", "_")
        empty = write_bytes(folder / f"empty_{stem}{suffix}", b"")
        entries.append(CorpusFile(f"empty{suffix}", empty, frozenset({"empty"}), "zero bytes", "zero bytes"))
        noise = np.random.default_rng(100 + index).bytes(4096)
        random = write_bytes(folder / f"random_{stem}{suffix}", b"\x00" + noise)  # never a known magic
        entries.append(CorpusFile(f"random{suffix}", random, frozenset({"unsupported_format"}), "random bytes"))
    return entries


def _dicom_cases(folder: Path) -> list[CorpusFile]:
    image = asymmetric_image()
    entries = []

    full = write_dicom(np.tile(image, (4, 4)), folder / "_full.dcm")
    cut = truncate_copy(full, folder / "dicom_truncated_pixels.dcm", full.stat().st_size - 100)
    full.unlink()
    entries.append(CorpusFile("dicom_truncated_pixels", cut, frozenset({"truncated"}), "pixel data cut short"))

    bomb = write_dicom(image, folder / "dicom_header_30000.dcm", extra={"Rows": 30000, "Columns": 30000})
    entries.append(CorpusFile("dicom_header_30000", bomb, frozenset({"too_large"}), "header 30000 x 30000", "30000"))

    for name, syntax in (("jpeg_lossless", JPEG_LOSSLESS), ("jpeg_ls", JPEG_LS_LOSSLESS), ("jpeg2000", JPEG_2000)):
        path = fake_compressed_dicom(folder / f"dicom_{name}_no_decoder.dcm", syntax)
        entries.append(CorpusFile(f"dicom_{name}_no_decoder", path, _NO_DECODER, "compressed, no decoder"))

    mono2 = write_dicom(image, folder / "dicom_mono2.dcm", spacing=(0.2, 0.2))
    mono1 = write_dicom(4095 - image, folder / "dicom_mono1.dcm", photometric="MONOCHROME1", spacing=(0.2, 0.2))
    entries.append(CorpusFile("dicom_mono2", mono2, frozenset({ACCEPTED}), "MONOCHROME2 reference"))
    entries.append(CorpusFile("dicom_mono1", mono1, frozenset({ACCEPTED}), "MONOCHROME1 of the same pixels"))

    frames = write_dicom(
        np.concatenate([image, image]), folder / "dicom_multiframe.dcm", extra={"NumberOfFrames": 2, "Rows": 24}
    )
    entries.append(CorpusFile("dicom_multiframe", frames, frozenset({"not_2d"}), "2 frames", "frames"))

    ds = pydicom.dcmread(write_dicom(image, folder / "dicom_sr_no_pixels.dcm"))
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.Modality = "SR"
    sr = save_dataset(ds, folder / "dicom_sr_no_pixels.dcm")
    entries.append(
        CorpusFile("dicom_sr_no_pixels", sr, frozenset({"unsupported_format"}), "SR, no pixels", "no pixel data")
    )
    other = write_dicom(image, folder / "dicom_modality_ot.dcm", modality="OT", spacing=(1, 1))
    entries.append(CorpusFile("dicom_modality_ot", other, frozenset({ACCEPTED}), "non-radiograph modality: warned"))

    slope = write_dicom(image, folder / "dicom_nan_slope.dcm", rescale=(9.5, 0.0))
    patch_once(
        slope, dicom_element_bytes(0x28, 0x1053, "DS", b"9.5 "), dicom_element_bytes(0x28, 0x1053, "DS", b"NaN ")
    )
    entries.append(CorpusFile("dicom_nan_slope", slope, frozenset({"invalid_pixels"}), "NaN slope", "rescaleslope"))

    flat = write_dicom(np.full((16, 16), 700, np.uint16), folder / "dicom_constant.dcm")
    entries.append(CorpusFile("dicom_constant", flat, frozenset({"invalid_pixels"}), "constant pixels"))

    nan_spacing = write_dicom(image, folder / "dicom_nan_spacing.dcm", spacing=(0.5, 0.5))
    old = dicom_element_bytes(0x28, 0x30, "DS", b"0.5\\0.5 ")
    patch_once(nan_spacing, old, dicom_element_bytes(0x28, 0x30, "DS", b"NaN\\NaN "))
    entries.append(CorpusFile("dicom_nan_spacing", nan_spacing, frozenset({ACCEPTED}), "NaN spacing: left out"))
    no_spacing = write_dicom(image, folder / "dicom_no_spacing.dcm")
    entries.append(CorpusFile("dicom_no_spacing", no_spacing, frozenset({ACCEPTED}), "no spacing: left out"))
    return entries


def _nifti_cases(folder: Path) -> list[CorpusFile]:
    values = good_radiograph(24, 32)
    values[0, :3] = np.nan
    values[1, 0] = np.inf
    some_nan = write_nifti(values, folder / "nifti_nan_inf_pixels.nii")
    all_nan = write_nifti(np.full((8, 8), np.nan, np.float32), folder / "nifti_all_nan.nii")
    flat = write_nifti(np.full((8, 8), 0.3, np.float32), folder / "nifti_constant.nii.gz")
    return [
        CorpusFile("nifti_nan_inf_pixels", some_nan, frozenset({ACCEPTED}), "4 NaN/inf pixels: replaced, counted"),
        CorpusFile("nifti_all_nan", all_nan, frozenset({"invalid_pixels"}), "all NaN"),
        CorpusFile("nifti_constant", flat, frozenset({"invalid_pixels"}), "constant"),
    ]


def _raster_cases(folder: Path) -> list[CorpusFile]:
    grey = (good_radiograph(30, 40) * 255).astype(np.uint8)
    entries = [
        CorpusFile(
            "png_header_30000",
            write_bytes(folder / "png_header_30000.png", png_bytes(30000, 30000)),
            frozenset({"too_large"}),
            "IHDR declares 30000 x 30000",
            "30000",
        ),
        CorpusFile(
            "png_decodes_to_10000",
            write_bytes(folder / "png_decodes_to_10000.png", png_decoding_to(10000, 10000)),
            frozenset({"too_large"}),
            "small valid PNG inflating to 10000 x 10000",
            "10000",
        ),
        CorpusFile(
            "tiff_named_png",
            write_bytes(folder / "tiff_named.png", _pil_bytes(grey, "TIFF")),
            frozenset({"unsupported_format"}),
            "TIFF renamed .png",
            "tiff",
        ),
        CorpusFile(
            "bmp_named_png",
            write_bytes(folder / "bmp_named.png", _pil_bytes(grey, "BMP")),
            frozenset({"unsupported_format"}),
            "BMP renamed .png",
            "bmp",
        ),
        CorpusFile(
            "png_constant",
            write_png(np.full((8, 8), 9, np.uint8), folder / "png_constant.png"),
            frozenset({"invalid_pixels"}),
            "constant",
        ),
    ]
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    full = write_jpeg(noise, folder / "_full.jpg")
    cut = truncate_copy(full, folder / "jpeg_truncated.jpg", 0.5)
    full.unlink()
    entries.append(CorpusFile("jpeg_truncated", cut, frozenset({"truncated"}), "JPEG cut in half"))
    entries.append(CorpusFile("png_rgb", write_rgb_png(folder / "png_rgb.png", grey), frozenset({ACCEPTED}), "RGB"))
    rgba = write_rgb_png(folder / "png_rgba.png", grey, alpha=True)
    entries.append(CorpusFile("png_rgba", rgba, frozenset({ACCEPTED}), "RGBA"))
    deep = write_png((good_radiograph(30, 40) * 65535).astype(np.uint16), folder / "png_16bit.png", bit_depth=16)
    entries.append(CorpusFile("png_16bit", deep, frozenset({ACCEPTED}), "16-bit grey"))
    return entries


def build_corpus(folder: str | Path) -> list[CorpusFile]:
    """Write the whole corpus into ``folder`` (created) and describe it.

    Args:
        folder: an empty folder (e.g. under ``tmp_path``).

    Returns:
        The entries, in a stable order; names are unique.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = _empty_and_random(folder) + _dicom_cases(folder) + _nifti_cases(folder) + _raster_cases(folder)
    names = [entry.name for entry in entries]
    assert len(set(names)) == len(names), names
    return entries
