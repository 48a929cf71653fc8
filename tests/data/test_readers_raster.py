"""Tests of radlas_monai.data.readers.raster: PNG / JPEG decoding, windowing, and bad files."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageFile
from radiograph_fixtures import (
    asymmetric_image,
    jpeg_with_sof_size,
    png_bytes,
    png_chunk,
    truncate_copy,
    write_bytes,
    write_rgb_png,
)

from radlas_monai.data.errors import ImageTooLargeError, InvalidPixelDataError, TruncatedFileError
from radlas_monai.data.readers.base import ReadOptions
from radlas_monai.data.readers.dispatch import read_radiograph

IMAGE16 = asymmetric_image()  # 12-bit values, bright pixel 4000 at (2, 7)
IMAGE8 = (IMAGE16 // 16).astype(np.uint8)


def _read(path, **options):
    return read_radiograph(path, ReadOptions(**options))


# --------------------------------------------------------------------------------------- good files
def test_png_8bit_round_trip_and_orientation(tmp_path):
    from radlas_monai.data.writers import write_png

    decoded = _read(write_png(IMAGE8, tmp_path / "a.png"))
    assert decoded.pixels.dtype == np.float32 and decoded.pixels.shape == IMAGE8.shape
    np.testing.assert_allclose(decoded.pixels, IMAGE8 / 255.0, atol=1e-6)
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)
    assert (decoded.window, decoded.bits_stored, decoded.source_format) == ((0.0, 255.0), 8, "png")
    assert decoded.photometric_interpretation == "MONOCHROME2" and decoded.spacing is None


PNG16_CASES = [
    # [window_16bit, expected window, expected bits]: 12-bit data in a 16-bit PNG
    ["bits", (0.0, 4095.0), 12],
    ["full", (0.0, 65535.0), 16],
]


@pytest.mark.parametrize("mode, window, bits", PNG16_CASES)
def test_png_16bit_windowing(tmp_path, mode, window, bits):
    from radlas_monai.data.writers import write_png

    decoded = _read(write_png(IMAGE16, tmp_path / "a.png", bit_depth=16), window_16bit=mode)
    assert decoded.window == window and decoded.bits_stored == bits
    np.testing.assert_allclose(decoded.pixels, IMAGE16 / window[1], atol=1e-6)
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)


def test_png_16bit_percentile_and_sbit(tmp_path):
    from radlas_monai.data.writers import write_png

    path = write_png(IMAGE16, tmp_path / "a.png", bit_depth=16)
    decoded = _read(path, window_16bit="percentile", percentiles=(0, 100))
    assert decoded.window == (float(IMAGE16.min()), float(IMAGE16.max()))
    assert decoded.pixels.min() == 0.0 and decoded.pixels.max() == 1.0
    # an sBIT chunk (14 significant bits) overrides the inferred 12 bits
    data = path.read_bytes()
    sbit = data[:33] + png_chunk(b"sBIT", bytes([14])) + data[33:]
    decoded = _read(write_bytes(tmp_path / "sbit.png", sbit))
    assert decoded.window == (0.0, 16383.0) and decoded.bits_stored == 14


@pytest.mark.parametrize("alpha", [False, True])
def test_rgb_and_rgba_png_reduce_to_the_grey_value(tmp_path, alpha):
    decoded = _read(write_rgb_png(tmp_path / "rgb.png", IMAGE8, alpha=alpha))
    np.testing.assert_allclose(decoded.pixels, IMAGE8 / 255.0, atol=1e-5)  # equal channels: luma = grey
    assert decoded.photometric_interpretation == "RGB"


def test_colour_png_uses_bt601_luminance(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[1, 1] = 200, (0, 255, 0)
    from radlas_monai.data.writers import write_png

    decoded = _read(write_png(rgb, tmp_path / "c.png"))
    assert decoded.pixels[0, 0] == pytest.approx(0.299 * 200 / 255, abs=1e-6)
    assert decoded.pixels[1, 1] == pytest.approx(0.587, abs=1e-6)


@pytest.mark.parametrize("mode", ["LA", "P", "1"])
def test_grey_alpha_palette_and_bilevel_png(tmp_path, mode):
    grey = Image.fromarray(np.where(IMAGE8 > 10, 255, 0).astype(np.uint8))
    converted = grey.convert(mode)
    path = tmp_path / f"{mode}.png"
    converted.save(path)
    decoded = _read(path)
    expected = np.asarray(grey) / 255.0
    np.testing.assert_allclose(decoded.pixels, expected, atol=1e-5)


def test_jpeg_round_trip_is_approximate_and_keeps_orientation(tmp_path):
    from radlas_monai.data.writers import write_jpeg

    image = np.full((32, 40), 40, dtype=np.uint8)
    image[2, 7] = 255
    decoded = _read(write_jpeg(image, tmp_path / "a.jpg", quality=100))
    assert decoded.source_format == "jpeg" and decoded.window == (0.0, 255.0)
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)
    assert np.abs(decoded.pixels - image / 255.0).mean() < 0.02


def test_constant_png_is_rejected_unless_allowed(tmp_path):
    from radlas_monai.data.writers import write_png

    path = write_png(np.zeros((8, 8), dtype=np.uint8), tmp_path / "black.png")
    with pytest.raises(InvalidPixelDataError, match="constant") as err:
        _read(path)
    assert str(path) in str(err.value)
    assert _read(path, reject_constant=False).pixels.max() == 0.0


# ---------------------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_bomb_headers_are_rejected_fast(tmp_path, kind):
    if kind == "png":
        path = write_bytes(tmp_path / "bomb.png", png_bytes(10000, 10000))
    else:
        path = jpeg_with_sof_size(tmp_path / "bomb.jpg", 60000, 60000)
    assert path.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="max_pixels=50000000") as err:
        _read(path)
    assert time.perf_counter() - start < 1.0
    assert str(path) in str(err.value) and err.value.kind == "too_large"


def test_max_pixels_applies_to_small_images(tmp_path):
    from radlas_monai.data.writers import write_png

    path = write_png(IMAGE8, tmp_path / "a.png")
    with pytest.raises(ImageTooLargeError, match="24 x 32 = 768 pixels"):
        _read(path, max_pixels=767)
    assert _read(path, max_pixels=768).pixels.shape == (24, 32)


def test_bomb_png_allocates_nothing_large(tmp_path):
    path = write_bytes(tmp_path / "bomb.png", png_bytes(10000, 10000))
    tracemalloc.start()
    with pytest.raises(ImageTooLargeError):
        _read(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # the image would be 100 MB


@pytest.mark.parametrize("keep", [0.5, 0.9, -12])
@pytest.mark.parametrize("kind", ["png", "jpeg"])
@pytest.mark.parametrize("pil_loads_truncated", [False, True])
def test_truncated_raster_files(tmp_path, monkeypatch, keep, kind, pil_loads_truncated):
    """Truncation is detected even when someone switched Pillow's global LOAD_TRUNCATED_IMAGES on."""
    from radlas_monai.data.writers import write_jpeg, write_png

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)  # incompressible: pixel data fills the file
    full = (write_png if kind == "png" else write_jpeg)(noise, tmp_path / f"full.{kind}")
    size = full.stat().st_size
    cut = truncate_copy(full, tmp_path / f"cut.{kind}", keep if isinstance(keep, float) else size + keep)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", pil_loads_truncated)
    with pytest.raises(TruncatedFileError) as err:
        _read(cut)
    assert str(cut) in str(err.value) and err.value.kind == "truncated"
    assert _read(full).pixels.shape == (64, 64)


def test_corrupt_png_data_is_invalid_pixels(tmp_path):
    path = write_bytes(tmp_path / "corrupt.png", png_bytes(8, 8, idat=b"\x78\x9c" + bytes(range(200))))
    with pytest.raises(InvalidPixelDataError, match="cannot be decoded"):
        _read(path)


def test_png_with_zero_width_is_invalid(tmp_path):
    with pytest.raises(InvalidPixelDataError, match="empty image"):
        _read(write_bytes(tmp_path / "zero.png", png_bytes(0, 10)))
