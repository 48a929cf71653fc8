"""Tests of radlas_monai.data.loader: LoadRadiograph / LoadRadiographd, meta data allow-list, warnings."""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd
from radiograph_fixtures import asymmetric_image, jpeg_with_sof_size, png_bytes, write_bytes

from radlas_monai.data.errors import (
    EmptyFileError,
    ImageTooLargeError,
    InvalidPixelDataError,
    UnsupportedFormatError,
)
from radlas_monai.data.loader import LoadRadiograph, LoadRadiographd
from radlas_monai.data.readers.meta import ALLOWED_META_KEYS
from radlas_monai.data.writers import write_dicom, write_jpeg, write_nifti, write_png

IMAGE = asymmetric_image()  # (24, 32) uint16, bright pixel at (row 2, col 7)
IMAGE8 = (IMAGE // 16).astype(np.uint8)
ALLOWED_META = ALLOWED_META_KEYS | {"affine", "space"}  # affine and space: MetaTensor's own keys
JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"

WRITERS = {
    "png8": lambda d: write_png(IMAGE8, d / "a.png"),
    "png16": lambda d: write_png(IMAGE, d / "a16.png", bit_depth=16),
    "jpeg": lambda d: write_jpeg(np.where(IMAGE8 > 20, 255, 40).astype(np.uint8), d / "a.jpg", quality=100),
    "nifti": lambda d: write_nifti(IMAGE.astype(np.float32) / 4095.0, d / "a.nii.gz", spacing=(0.4, 0.3)),
    "dicom": lambda d: write_dicom(IMAGE, d / "a.dcm", spacing=(0.2, 0.3)),
    "dicom_mono1": lambda d: write_dicom(4095 - IMAGE, d / "m1.dcm", photometric="MONOCHROME1", spacing=(0.2, 0.3)),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_gives_the_project_tensor(tmp_path, kind):
    path = WRITERS[kind](tmp_path)
    image = LoadRadiograph(percentiles=(0, 100))(path)
    assert isinstance(image, MetaTensor) and image.dtype == torch.float32
    assert tuple(image.shape) == (1, 24, 32)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert tuple(np.unravel_index(int(image[0].argmax()), (24, 32))) == (2, 7)  # rows = y, columns = x
    meta = image.meta
    assert set(meta) <= ALLOWED_META
    assert meta["filename_or_obj"] == str(path)
    assert meta["image_id"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert meta["original_shape"] == (24, 32) and list(meta["spatial_shape"]) == [24, 32]
    assert meta["source_format"] == {"png8": "png", "png16": "png", "dicom_mono1": "dicom"}.get(kind, kind)
    assert meta["nonfinite_pixels"] == 0 and meta["original_channel_dim"] == 0
    low, high = meta["window"]
    assert low < high


@pytest.mark.parametrize(
    "kind, spacing", [["dicom", (0.2, 0.3)], ["nifti", (0.4, 0.3)], ["png8", None], ["jpeg", None]]
)
def test_spacing_and_affine(tmp_path, kind, spacing):
    image = LoadRadiograph()(WRITERS[kind](tmp_path))
    assert image.meta.get("spacing") == (pytest.approx(spacing) if spacing else None)
    expected = torch.diag(torch.tensor([*(spacing or (1.0, 1.0)), 1.0], dtype=torch.float64))
    torch.testing.assert_close(image.affine.to(torch.float64), expected)
    torch.testing.assert_close(image.pixdim.to(torch.float64), expected.diagonal()[:2])


def test_dicom_meta_values(tmp_path):
    image = LoadRadiograph(percentiles=(0, 100))(WRITERS["dicom_mono1"](tmp_path))
    meta = image.meta
    assert (meta["modality"], meta["photometric_interpretation"], meta["bits_stored"]) == ("DX", "MONOCHROME1", 12)
    assert meta["window"] == (float(4095 - IMAGE.max()), float(4095 - IMAGE.min()))
    mono2 = LoadRadiograph(percentiles=(0, 100))(WRITERS["dicom"](tmp_path))
    torch.testing.assert_close(image.as_tensor(), mono2.as_tensor(), atol=1e-5, rtol=0)


def test_patient_identifiers_never_reach_meta_or_logs(tmp_path, caplog):
    """pydicom path here; the ITK path is checked in test_readers_dicom_itk.py (same meta builder)."""
    patient = {
        "PatientName": "Phantom^Secret",
        "PatientID": "ID-SECRET-42",
        "PatientBirthDate": "19010203",
        "PatientAddress": "1 Secret Street",
    }
    extra = {"InstitutionName": "SecretClinic", "ReferringPhysicianName": "Dr^Secret", "AccessionNumber": "ACC-SECRET"}
    path = write_dicom(IMAGE, tmp_path / "phi.dcm", modality="OT", patient=patient, extra=extra)
    with caplog.at_level(logging.DEBUG):
        image = LoadRadiograph()(path)
    assert set(image.meta) <= ALLOWED_META
    text = repr(image.meta) + caplog.text
    for secret in ("Phantom", "Secret", "SECRET", "19010203"):
        assert secret not in text
    assert "modality" in caplog.text  # the OT modality was warned about, without printing its value


def test_partial_nan_pixels_are_counted_and_replaced(tmp_path, caplog):
    values = IMAGE.astype(np.float32) / 4095.0
    values[0, :3] = np.nan
    values[1, 0] = np.inf
    with caplog.at_level(logging.WARNING):
        image = LoadRadiograph()(write_nifti(values, tmp_path / "nan.nii"))
    assert image.meta["nonfinite_pixels"] == 4 and torch.isfinite(image).all()
    assert float(image[0, 0, 0]) == float(image.min()) == pytest.approx(100 / 4095)
    assert "4 NaN/inf pixels" in caplog.text


def test_warnings_are_logged_once_per_loader_instance(tmp_path, caplog):
    paths = [write_dicom(IMAGE + i, tmp_path / f"{i}.dcm") for i in range(3)]  # no spacing -> warning
    loader = LoadRadiograph()
    with caplog.at_level(logging.WARNING, logger="radlas_monai.data.loader"):
        for path in paths:
            loader(path)
    spacing_warnings = [r for r in caplog.records if "pixel spacing" in r.getMessage()]
    assert len(spacing_warnings) == 1 and spacing_warnings[0].levelno == logging.WARNING
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radlas_monai.data.loader"):
        LoadRadiograph()(paths[0])  # a new instance warns again
    assert len([r for r in caplog.records if "pixel spacing" in r.getMessage()]) == 1


def test_out_of_range_input_is_warned(tmp_path, caplog):
    # a header window far below the data: nearly every pixel saturates to white
    path = write_dicom(IMAGE, tmp_path / "w.dcm", window=(10.0, 20.0), spacing=(1, 1))
    with caplog.at_level(logging.WARNING):
        image = LoadRadiograph()(path)
    assert float(image.mean()) > 0.9 and "out of the expected intensity range" in caplog.text


# -------------------------------------------------------------------------------------- bad inputs
BAD_FILES = {
    "empty": (lambda d: write_bytes(d / "empty.png", b""), EmptyFileError),
    "random": (lambda d: write_bytes(d / "random.dcm", np.random.default_rng(0).bytes(3000)), UnsupportedFormatError),
    "text": (lambda d: write_bytes(d / "notes.jpg", b"hello world\n" * 50), UnsupportedFormatError),
    "png_bomb": (lambda d: write_bytes(d / "bomb.png", png_bytes(10000, 10000)), ImageTooLargeError),
    "jpeg_bomb": (lambda d: jpeg_with_sof_size(d / "bomb.jpg", 65000, 65000), ImageTooLargeError),
    "dicom_bomb": (
        lambda d: write_dicom(IMAGE, d / "bomb.dcm", extra={"Rows": 30000, "Columns": 30000}),
        ImageTooLargeError,
    ),
    "constant": (lambda d: write_png(np.full((8, 8), 9, dtype=np.uint8), d / "flat.png"), InvalidPixelDataError),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_typed_errors_fast(tmp_path, case):
    make, error = BAD_FILES[case]
    path = make(tmp_path)
    loader = LoadRadiograph()
    start = time.perf_counter()
    with pytest.raises(error) as err:
        loader(path)
    assert time.perf_counter() - start < 1.0
    assert err.value.path == str(path) and str(path) in str(err.value) and err.value.reason
    restored = pickle.loads(pickle.dumps(err.value))  # crosses DataLoader worker boundaries
    assert type(restored) is error and restored.path == err.value.path


def test_loader_rejects_non_paths_and_bad_options():
    with pytest.raises(TypeError, match="file path"):
        LoadRadiograph()(np.zeros((4, 4)))
    for kwargs in ({"window_16bit": "auto"}, {"dicom_backend": "gdcm"}, {"percentiles": (50, 10)}, {"max_pixels": 0}):
        with pytest.raises(ValueError):
            LoadRadiograph(**kwargs)


def test_reject_constant_false_loads_empty_masks(tmp_path):
    image = LoadRadiograph(reject_constant=False)(write_png(np.zeros((8, 8), dtype=np.uint8), tmp_path / "m.png"))
    assert float(image.max()) == 0.0
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2, 3] = 255
    image = LoadRadiograph(reject_constant=False)(write_png(mask, tmp_path / "m2.png"))
    assert float(image[0, 2, 3]) == 1.0 and float(image.sum()) == 1.0


# --------------------------------------------------------------------------------- dict transform
def test_dictionary_transform_and_allow_missing_keys(tmp_path):
    image_path = WRITERS["dicom"](tmp_path)
    mask_path = write_png(np.where(IMAGE8 > 20, 255, 0).astype(np.uint8), tmp_path / "mask.png")
    data = {"image": image_path, "lung_mask": mask_path, "label": [1, 0]}
    out = LoadRadiographd(keys=("image", "lung_mask"))(data)
    assert isinstance(out["image"], MetaTensor) and isinstance(out["lung_mask"], MetaTensor)
    assert out["label"] == [1, 0] and data["image"] == image_path  # input dict untouched
    with pytest.raises(KeyError):
        LoadRadiographd(keys=("image", "lesion_mask"))(data)
    out = LoadRadiographd(keys=("image", "lesion_mask"), allow_missing_keys=True)(data)
    assert "lesion_mask" not in out and isinstance(out["image"], MetaTensor)


def test_works_in_a_monai_pipeline_and_collates_mixed_meta(tmp_path):
    items = [{"image": WRITERS["dicom"](tmp_path)}, {"image": write_png(IMAGE8, tmp_path / "b.png")}]
    transform = Compose([LoadRadiographd(keys="image"), EnsureChannelFirstd(keys="image")])
    batch = next(iter(DataLoader(Dataset(items, transform), batch_size=2, num_workers=0)))
    assert tuple(batch["image"].shape) == (2, 1, 24, 32)  # EnsureChannelFirst is a no-op
    assert len(batch["image"].meta["image_id"]) == 2


@pytest.mark.skipif(not JSRT.exists(), reason="JSRT data (../shared/data/jsrt_nodule) is not available")
def test_real_jsrt_radiographs():
    files = sorted(p for p in JSRT.rglob("*.png") if "mask" not in str(p).lower())[:3]
    assert files, "no JSRT images found"
    loader = LoadRadiograph()
    for path in files:
        image = loader(path)
        assert tuple(image.shape) == (1, 512, 512) and image.meta["source_format"] == "png"
        assert 0.0 <= float(image.min()) < 0.2 and 0.8 < float(image.max()) <= 1.0


def test_mask_mode_accepts_empty_masks_without_range_warnings(tmp_path, caplog):
    empty = write_png(np.zeros((16, 16), np.uint8), tmp_path / "empty_mask.png")
    sparse = np.zeros((16, 16), np.uint8)
    sparse[2:4, 2:4] = 255
    sparse_path = write_png(sparse, tmp_path / "sparse_mask.png")
    with pytest.raises(InvalidPixelDataError):
        LoadRadiograph()(empty)
    with caplog.at_level(logging.WARNING, logger="radlas_monai.data"):
        loader = LoadRadiograph(mask=True)
        assert float(loader(empty).max()) == 0.0
        assert float(loader(sparse_path).sum()) == 4.0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
