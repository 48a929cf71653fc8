from __future__ import annotations

import numpy as np
import pytest
from label_fixtures import radiograph

from radlas_monai.data.errors import NotA2DImageError, TruncatedFileError, UnsupportedFormatError
from radlas_monai.label.decode import DecodeFailedError, SafeRadiographDecoder


@pytest.fixture(scope="module")
def decoder():
    decoder = SafeRadiographDecoder(memory_limit=3 << 30, timeout=120)
    yield decoder
    decoder.close()


def test_decodes_png_and_dicom_in_input_geometry(decoder, tmp_path):
    from radlas_monai.data.writers import write_dicom, write_png

    image = radiograph(30, 50)
    png = decoder(write_png(image, tmp_path / "a.png"))
    dcm = decoder(write_dicom(image, tmp_path / "named.png", modality="CR"))  # format by content, not suffix
    assert png.pixels.shape == (30, 50) and png.pixels.dtype == np.float32 and png.source_format == "png"
    assert dcm.pixels.shape == (30, 50) and dcm.source_format == "dicom" and dcm.facts["modality"] == "CR"
    np.testing.assert_allclose(png.pixels, image, atol=1 / 255)


@pytest.mark.parametrize(
    "name, content, error",
    [
        ["text.png", b"hello, not an image", UnsupportedFormatError],
        ["cut.png", None, TruncatedFileError],
        ["volume.nii", "volume", NotA2DImageError],
    ],
)
def test_bad_files_raise_typed_errors_and_worker_survives(decoder, tmp_path, name, content, error):
    from radlas_monai.data.writers import write_png

    path = tmp_path / name
    if content is None:
        full = write_png(radiograph(40, 40), tmp_path / "full.png").read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif content == "volume":
        import nibabel as nib

        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 3)).astype(np.float32), np.eye(4)), path)
    else:
        path.write_bytes(content)
    with pytest.raises(error):
        decoder(path)
    assert decoder(write_png(radiograph(10, 12), tmp_path / "ok.png")).pixels.shape == (10, 12)


def test_timeout_kills_the_worker(tmp_path):
    from radlas_monai.data.writers import write_png

    decoder = SafeRadiographDecoder(timeout=0.001)
    try:
        with pytest.raises(DecodeFailedError, match="longer than"):
            decoder(write_png(radiograph(10, 10), tmp_path / "a.png"))
        assert decoder._pool is None  # replaced on the next call
    finally:
        decoder.close()


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="timeout"):
        SafeRadiographDecoder(timeout=0)
