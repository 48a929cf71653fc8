"""Tests of radlas_monai.data.readers.nifti: orientation, singleton axes, windows, spacing, bad files."""

from __future__ import annotations

import gzip
import struct
import time

import nibabel as nib
import numpy as np
import pytest
from radiograph_fixtures import asymmetric_image, truncate_copy, write_bytes

from radlas_monai.data.errors import (
    ImageTooLargeError,
    InvalidPixelDataError,
    NotA2DImageError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from radlas_monai.data.readers.base import ReadOptions
from radlas_monai.data.readers.dispatch import read_radiograph
from radlas_monai.data.writers import write_nifti

IMAGE = asymmetric_image()  # (24, 32), bright pixel at (2, 7)
UNIT = (IMAGE - IMAGE.min()) / float(IMAGE.max() - IMAGE.min())


def _read(path, **options):
    return read_radiograph(path, ReadOptions(**options))


def _save(voxels: np.ndarray, path, zooms=None, units="mm"):
    image = nib.Nifti1Image(voxels, np.eye(4))
    if zooms is not None:
        image.header.set_zooms(zooms)
    image.header.set_xyzt_units(units)
    nib.save(image, str(path))
    return path


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz"])
def test_float_unit_image_round_trips_unchanged(tmp_path, name):
    decoded = _read(write_nifti(UNIT.astype(np.float32), tmp_path / name, spacing=(0.5, 0.25)))
    np.testing.assert_allclose(decoded.pixels, UNIT, atol=1e-6)
    assert decoded.window == (0.0, 1.0) and decoded.spacing == (0.5, 0.25)
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)
    assert (decoded.source_format, decoded.bits_stored) == ("nifti", 32)


def test_float_image_outside_unit_range_gets_percentile_window(tmp_path):
    values = IMAGE.astype(np.float32) * 0.5 - 300.0  # e.g. a processed image in arbitrary units
    decoded = _read(write_nifti(values, tmp_path / "a.nii"), percentiles=(0, 100))
    assert decoded.window == (float(values.min()), float(values.max()))
    np.testing.assert_allclose(decoded.pixels, UNIT, atol=1e-6)


@pytest.mark.parametrize(
    "dtype, window", [[np.uint8, (0.0, 255.0)], [np.uint16, (0.0, 4095.0)], [np.int16, (100.0, 4000.0)]]
)
def test_integer_windows(tmp_path, dtype, window):
    values = (IMAGE // 16).astype(dtype) if dtype == np.uint8 else IMAGE.astype(dtype)
    decoded = _read(write_nifti(values, tmp_path / "a.nii.gz"), percentiles=(0, 100))
    assert decoded.window == window
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)


@pytest.mark.parametrize(
    "shape_of",
    [
        lambda v: v[:, :, None],  # (x, y, 1)
        lambda v: v[:, None, :],  # (x, 1, y)
        lambda v: v[None, :, :],  # (1, x, y)
        lambda v: v[:, :, None, None],  # (x, y, 1, 1)
    ],
)
def test_singleton_axes_are_squeezed_in_order(tmp_path, shape_of):
    voxels = shape_of(UNIT.T.astype(np.float32))
    decoded = _read(_save(voxels, tmp_path / "v.nii"))
    np.testing.assert_allclose(decoded.pixels, UNIT, atol=1e-6)


def test_spacing_follows_the_image_axes_and_units(tmp_path):
    voxels = UNIT.T.astype(np.float32)[:, None, :]  # x, singleton, y
    decoded = _read(_save(voxels, tmp_path / "v.nii", zooms=(0.2, 9.0, 0.3)))
    assert decoded.spacing == pytest.approx((0.3, 0.2))  # (row = y, col = x)
    decoded = _read(_save(UNIT.T.astype(np.float32), tmp_path / "m.nii", zooms=(0.0002, 0.0003), units="meter"))
    assert decoded.spacing == pytest.approx((0.3, 0.2))


def test_scl_slope_is_applied(tmp_path):
    image = nib.Nifti1Image(IMAGE.T.astype(np.int16), np.eye(4))
    image.header.set_slope_inter(0.5, -10.0)
    path = tmp_path / "s.nii"
    nib.save(image, str(path))
    decoded = _read(path, percentiles=(0, 100))
    assert decoded.window == (IMAGE.min() * 0.5 - 10.0, IMAGE.max() * 0.5 - 10.0)


@pytest.mark.parametrize("shape", [(32, 24, 3), (32, 24, 2, 2), (32,)])
def test_volumes_are_not_2d(tmp_path, shape):
    path = _save(np.ones(shape, dtype=np.float32), tmp_path / "vol.nii.gz")
    with pytest.raises(NotA2DImageError, match="not a 2D image") as err:
        _read(path)
    assert str(path) in str(err.value) and err.value.kind == "not_2d"


@pytest.mark.parametrize("compressed", [False, True])
def test_bomb_dims_rejected_from_header(tmp_path, compressed):
    path = write_nifti(UNIT.astype(np.float32), tmp_path / "b.nii")
    data = bytearray(path.read_bytes())
    data[40:48] = struct.pack("<4h", 2, 30000, 30000, 1)  # dim[0..3]
    content = gzip.compress(bytes(data)) if compressed else bytes(data)
    bomb = write_bytes(tmp_path / ("bomb.nii.gz" if compressed else "bomb.nii"), content)
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="30000 x 30000"):
        _read(bomb)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name, keep", [["a.nii", 0.7], ["a.nii.gz", 0.7], ["a.nii", 200]])
def test_truncated_files(tmp_path, name, keep):
    rng = np.random.default_rng(0)
    full = write_nifti(rng.random((40, 50)).astype(np.float32), tmp_path / name)
    cut = truncate_copy(full, tmp_path / f"cut_{name}", keep)
    expected = UnsupportedFormatError if keep == 200 else TruncatedFileError  # 200 bytes: not even a header
    with pytest.raises(expected) as err:
        _read(cut)
    assert str(cut) in str(err.value)


def test_nonfinite_voxels(tmp_path):
    values = UNIT.astype(np.float32)
    values[0, 0], values[5, 5], values[6, 6] = np.nan, np.inf, -np.inf
    warnings = []
    decoded = read_radiograph(
        write_nifti(values, tmp_path / "n.nii"), ReadOptions(), lambda kind, msg: warnings.append(kind)
    )
    assert decoded.nonfinite_pixels == 3 and "nonfinite" in warnings
    assert decoded.pixels[0, 0] == decoded.pixels[5, 5] == decoded.pixels[6, 6] == 0.0
    assert np.isfinite(decoded.pixels).all()
    with pytest.raises(InvalidPixelDataError, match="NaN or infinite"):
        _read(write_nifti(np.full((4, 4), np.nan, dtype=np.float32), tmp_path / "all_nan.nii"))


def test_constant_volume_is_invalid(tmp_path):
    with pytest.raises(InvalidPixelDataError, match="constant"):
        _read(write_nifti(np.full((4, 4), 0.3, dtype=np.float32), tmp_path / "c.nii"))


def test_rgb_nifti_is_unsupported(tmp_path):
    rgb = np.zeros((8, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = tmp_path / "rgb.nii"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), str(path))
    with pytest.raises(UnsupportedFormatError, match="not a scalar grey image"):
        _read(path)
