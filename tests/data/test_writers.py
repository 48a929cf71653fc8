"""Tests of radlas_monai.data.writers, read back with the format libraries themselves (not our loader)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from radlas_monai.data.writers import SOP_CLASS_UIDS, write_dicom, write_jpeg, write_nifti, write_png

IMAGE = np.arange(6 * 9, dtype=np.uint16).reshape(6, 9) * 70  # max 3710 (< 4096)


# --------------------------------------------------------------------------------------------- PNG
PNG_CASES = [
    # [array, bit_depth, expected PIL mode, expected stored values]
    [(IMAGE // 16).astype(np.uint8), 8, "L", (IMAGE // 16).astype(np.uint8)],
    [IMAGE, 16, "I;16", IMAGE],
    [IMAGE.astype(np.int64) // 16, 8, "L", (IMAGE // 16).astype(np.uint8)],
    [np.array([[0.0, 0.5], [1.0, 0.25]]), 8, "L", np.array([[0, 128], [255, 64]], dtype=np.uint8)],
    [np.array([[0.0, 0.5], [1.0, 0.25]]), 16, "I;16", np.array([[0, 32768], [65535, 16384]])],
    [np.array([[True, False]]), 8, "L", np.array([[255, 0]])],
]


@pytest.mark.parametrize("array, bit_depth, mode, expected", PNG_CASES)
def test_write_png_values(tmp_path, array, bit_depth, mode, expected):
    path = write_png(array, tmp_path / "sub" / "a.png", bit_depth=bit_depth)
    assert path.exists() and path.parent.name == "sub"
    with Image.open(path) as image:
        assert image.mode == mode
        np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("channels, mode", [[2, "LA"], [3, "RGB"], [4, "RGBA"]])
def test_write_png_colour(tmp_path, channels, mode):
    array = np.stack([(IMAGE // 16).astype(np.uint8)] * channels, axis=-1)
    with Image.open(write_png(array, tmp_path / "c.png")) as image:
        assert image.mode == mode and image.size == (9, 6)
        np.testing.assert_array_equal(np.asarray(image), array)


@pytest.mark.parametrize(
    "array, kwargs, match",
    [
        [IMAGE, {"bit_depth": 8}, "do not fit in 8 bits"],
        [IMAGE, {"bit_depth": 12}, "bit_depth must be 8 or 16"],
        [np.array([[0.0, 1.5]]), {}, r"\[0, 1\]"],
        [np.array([[0.0, np.nan]]), {}, "NaN"],
        [np.array([[-1, 2]]), {}, "do not fit"],
        [np.zeros((2, 3, 4, 5)), {}, "H x W"],
        [np.zeros((0, 3)), {}, "non-empty"],
        [np.zeros((4, 4, 3), dtype=np.uint8), {"bit_depth": 16}, "bit_depth=8 only"],
        [np.array([["a"]]), {}, "unsupported dtype"],
    ],
)
def test_write_png_rejects(tmp_path, array, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_png(array, tmp_path / "bad.png", **kwargs)
    assert not (tmp_path / "bad.png").exists()


def test_write_jpeg(tmp_path):
    array = np.tile(np.linspace(0, 1, 32), (16, 1))
    with Image.open(write_jpeg(array, tmp_path / "a.jpg", quality=100)) as image:
        assert image.format == "JPEG" and image.mode == "L" and image.size == (32, 16)
        np.testing.assert_allclose(np.asarray(image) / 255.0, array, atol=0.02)
    with pytest.raises(ValueError, match="quality"):
        write_jpeg(array, tmp_path / "b.jpg", quality=0)


# ------------------------------------------------------------------------------------------- NIfTI
@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int16, np.uint8])
def test_write_nifti_stores_transpose_and_spacing(tmp_path, name, dtype):
    array = (IMAGE // 16).astype(dtype)
    image = nib.load(write_nifti(array, tmp_path / name, spacing=(0.5, 0.25)))
    data = np.asarray(image.dataobj)
    assert data.shape == (9, 6)  # (x, y) = (columns, rows)
    np.testing.assert_array_equal(data.T, array)
    assert data.dtype == (np.float32 if dtype == np.float64 else dtype)
    np.testing.assert_allclose(image.header.get_zooms(), (0.25, 0.5))
    np.testing.assert_allclose(np.diag(image.affine)[:2], (0.25, 0.5))
    assert image.header.get_xyzt_units()[0] == "mm"


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ["a.png", {}, r"\.nii"],
        ["a.nii", {"spacing": (0.0, 1.0)}, "positive"],
        ["a.nii", {"spacing": (np.nan, 1)}, "finite"],
    ],
)
def test_write_nifti_rejects(tmp_path, name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_nifti(IMAGE, tmp_path / name, **kwargs)


# ------------------------------------------------------------------------------------------- DICOM
def test_write_dicom_is_a_complete_file(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "d" / "a.dcm", spacing=(0.139, 0.14))
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.MediaStorageSOPClassUID == SOP_CLASS_UIDS["DX"] == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (6, 9, 16, 12, 11)
    assert (ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation) == (0, 1, "MONOCHROME2")
    assert [float(v) for v in ds.PixelSpacing] == [0.139, 0.14]
    assert ds.Modality == "DX" and ds.PatientName == "" and ds.PatientID == ""
    assert "PatientBirthDate" not in ds and "StudyDate" not in ds
    np.testing.assert_array_equal(ds.pixel_array, IMAGE)


def test_write_dicom_options(tmp_path):
    patient = {"PatientName": "Test^Phantom", "PatientID": "PHANTOM-1", "PatientBirthDate": "19000101"}
    path = write_dicom(
        4095 - IMAGE,
        tmp_path / "b.dcm",
        spacing=(0.2, 0.3),
        spacing_tag="ImagerPixelSpacing",
        photometric="MONOCHROME1",
        bits_stored=12,
        modality="CR",
        rescale=(2.0, -10.0),
        window=(1500.0, 3000.0),
        patient=patient,
        extra={"BodyPartExamined": "CHEST"},
    )
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.PresentationLUTShape == "INVERSE"
    assert "PixelSpacing" not in ds and [float(v) for v in ds.ImagerPixelSpacing] == [0.2, 0.3]
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (2.0, -10.0)
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (1500.0, 3000.0)
    assert ds.SOPClassUID == SOP_CLASS_UIDS["CR"] and ds.BodyPartExamined == "CHEST"
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == tuple(patient.values())
    np.testing.assert_array_equal(ds.pixel_array, 4095 - IMAGE)


def test_write_dicom_signed_float_and_secondary_capture(tmp_path):
    signed = IMAGE.astype(np.int32) - 2000
    ds = pydicom.dcmread(write_dicom(signed, tmp_path / "s.dcm", modality="OT"))
    assert ds.PixelRepresentation == 1 and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert "PresentationLUTShape" not in ds
    np.testing.assert_array_equal(ds.pixel_array, signed)
    ds = pydicom.dcmread(write_dicom(np.array([[0.0, 1.0], [0.5, 0.25]]), tmp_path / "f.dcm", bits_stored=10))
    np.testing.assert_array_equal(ds.pixel_array, [[0, 1023], [512, 256]])


def test_write_dicom_is_deterministic(tmp_path):
    first = write_dicom(IMAGE, tmp_path / "1.dcm", spacing=(0.1, 0.1)).read_bytes()
    assert write_dicom(IMAGE, tmp_path / "2.dcm", spacing=(0.1, 0.1)).read_bytes() == first
    assert write_dicom(IMAGE + 1, tmp_path / "3.dcm", spacing=(0.1, 0.1)).read_bytes() != first


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"bits_stored": 10}, "do not fit in 10 bits"],
        [{"bits_stored": 17}, "bits_stored"],
        [{"photometric": "RGB"}, "photometric"],
        [{"spacing_tag": "Spacing"}, "spacing_tag"],
        [{"spacing": (0.1, -1.0)}, "positive"],
        [{"patient": {"StudyDate": "20000101"}}, "group 0010"],
        [{"extra": {"NotAKeyword": 1}}, "unknown DICOM keyword"],
    ],
)
def test_write_dicom_rejects(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_dicom(IMAGE, tmp_path / "bad.dcm", **kwargs)
