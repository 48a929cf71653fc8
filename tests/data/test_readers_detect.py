"""Tests of radlas_monai.data.readers.detect and of content-based dispatch (suffixes are not trusted)."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from PIL import Image
from radiograph_fixtures import asymmetric_image, write_bytes

from radlas_monai.data.errors import EmptyFileError, RadiographReadError, UnsupportedFormatError
from radlas_monai.data.readers.detect import detect_format
from radlas_monai.data.readers.dispatch import image_id_of, read_radiograph
from radlas_monai.data.writers import write_dicom, write_jpeg, write_nifti, write_png

GREY = (asymmetric_image() // 16).astype(np.uint8)

WRITERS = {
    "dicom": lambda p: write_dicom(asymmetric_image(), p),
    "png": lambda p: write_png(GREY, p),
    "jpeg": lambda p: write_jpeg(GREY, p),
    "nifti": lambda p: write_nifti(GREY, p.with_name("x.nii")),
    "nifti-gz": lambda p: write_nifti(GREY, p.with_name("x.nii.gz")),
}


@pytest.mark.parametrize("kind, expected", [[k, k.split("-")[0]] for k in WRITERS])
def test_detect_supported_by_content_whatever_the_suffix(tmp_path, kind, expected):
    written = WRITERS[kind](tmp_path / "x.bin")
    renamed = written.rename(tmp_path / "misleading.tif")
    info = detect_format(renamed.read_bytes(), ".tif")
    assert (info.format, info.supported, info.compressed) == (expected, True, kind == "nifti-gz")
    # and the reader follows the content, not the suffix
    assert read_radiograph(renamed).source_format == expected


@pytest.mark.parametrize(
    "pil_format, name",
    [["TIFF", "TIFF"], ["BMP", "BMP"], ["GIF", "GIF"], ["WEBP", "WebP"], ["JPEG2000", "JPEG 2000 (JP2)"]],
)
def test_other_image_formats_renamed_png_are_rejected_by_name(tmp_path, pil_format, name):
    path = tmp_path / "scan.png"
    try:
        Image.fromarray(GREY).save(path, format=pil_format)
    except (OSError, KeyError):
        pytest.skip(f"Pillow cannot write {pil_format} here")
    assert detect_format(path.read_bytes(), ".png").format == name
    with pytest.raises(UnsupportedFormatError, match=re.escape(f"content is {name}")) as err:
        read_radiograph(path)
    assert err.value.path == str(path) and str(path) in str(err.value) and err.value.kind == "unsupported_format"


@pytest.mark.parametrize(
    "content, suffix, name",
    [
        [b"%PDF-1.4 hello", ".png", "PDF"],
        [b"PK\x03\x04" + bytes(40), ".jpg", "ZIP archive"],
        [gzip.compress(b"not a nifti" * 100), ".nii.gz", "gzip (not NIfTI)"],
        [np.random.default_rng(0).bytes(4096), ".png", "unknown"],
        [b"just some text\n" * 30, ".nii", "unknown"],
    ],
)
def test_not_images_are_unsupported(tmp_path, content, suffix, name):
    path = write_bytes(tmp_path / f"file{suffix}", content)
    assert detect_format(content, suffix).format == name
    with pytest.raises(UnsupportedFormatError, match="not DICOM, PNG, JPEG or NIfTI"):
        read_radiograph(path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_named_dcm_are_unsupported(tmp_path, seed):
    path = write_bytes(tmp_path / "random.dcm", np.random.default_rng(seed).bytes(2048))
    with pytest.raises(UnsupportedFormatError) as err:
        read_radiograph(path)
    assert str(path) in str(err.value)


def test_empty_and_missing_files(tmp_path):
    empty = write_bytes(tmp_path / "empty.dcm", b"")
    with pytest.raises(EmptyFileError, match="zero bytes") as err:
        read_radiograph(empty)
    assert err.value.path == str(empty) and err.value.kind == "empty"
    with pytest.raises(RadiographReadError, match="does not exist"):
        read_radiograph(tmp_path / "nope.png")
    with pytest.raises(RadiographReadError, match="cannot be read"):
        read_radiograph(tmp_path)


def test_nifti_pair_header_is_named(tmp_path):
    path = write_nifti(GREY, tmp_path / "x.nii")
    data = bytearray(path.read_bytes())
    data[344:348] = b"ni1\x00"
    pair = write_bytes(tmp_path / "x.hdr", bytes(data))
    with pytest.raises(UnsupportedFormatError, match=r"\.hdr/\.img pair"):
        read_radiograph(pair)


def test_image_id_is_sha256_prefix_of_the_bytes(tmp_path):
    path = write_png(GREY, tmp_path / "a.png")
    image_id = read_radiograph(path).image_id
    assert image_id == image_id_of(path.read_bytes()) and len(image_id) == 16
    int(image_id, 16)
    other = write_png(GREY + 1, tmp_path / "b.png")
    assert read_radiograph(other).image_id != image_id
