"""Tests of the ITK/GDCM DICOM backend: agreement with pydicom, and fallback for compressed files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from radiograph_fixtures import (
    JPEG_LOSSLESS,
    JPEG_LS_LOSSLESS,
    asymmetric_image,
    fake_compressed_dicom,
    save_dataset,
    voi_lut_item,
)

from radlas_monai.data.errors import MissingDecoderError
from radlas_monai.data.readers.base import ReadOptions
from radlas_monai.data.readers.dicom import pydicom_can_decode
from radlas_monai.data.readers.dispatch import read_radiograph
from radlas_monai.data.readers.meta import ALLOWED_META_KEYS, build_meta
from radlas_monai.data.writers import write_dicom

itk = pytest.importorskip("itk")

# ITK's SWIG wrappers emit these on import; not ours to fix, and not hidden globally
pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

IMAGE = asymmetric_image()


def _read(path, backend: str, **options):
    return read_radiograph(path, ReadOptions(dicom_backend=backend, **options), lambda kind, message: None)


AGREEMENT_CASES = [
    # write_dicom kwargs; stored values are derived from IMAGE
    ["mono2", {}],
    ["mono1", {"photometric": "MONOCHROME1"}],
    ["mono1_16bit", {"photometric": "MONOCHROME1", "bits_stored": 16}],
    ["mono1_rescale_window", {"photometric": "MONOCHROME1", "rescale": (2.0, -50.0), "window": (4000.0, 3000.0)}],
    ["mono1_float_rescale", {"photometric": "MONOCHROME1", "rescale": (0.5, 3.0)}],
    ["mono2_float_rescale_window", {"rescale": (0.25, -10.0), "window": (500.0, 800.0)}],
    ["signed", {"signed": True}],
    ["signed_mono1_16bit", {"signed": True, "photometric": "MONOCHROME1", "bits_stored": 16}],
    ["voi_lut", {"extra": {"VOILUTSequence": [voi_lut_item(100, np.arange(1000) * 4)]}}],
]


@pytest.mark.parametrize("name, kwargs", AGREEMENT_CASES)
def test_pydicom_and_itk_agree(tmp_path, name, kwargs):
    kwargs = dict(kwargs)
    stored = IMAGE.astype(np.int32) - 2048 if kwargs.pop("signed", False) else IMAGE
    path = write_dicom(stored, tmp_path / f"{name}.dcm", spacing=(0.2, 0.3), **kwargs)
    by_pydicom, by_itk = _read(path, "pydicom", percentiles=(0, 100)), _read(path, "itk", percentiles=(0, 100))
    assert (by_pydicom.decoder, by_itk.decoder) == ("pydicom", "itk")
    np.testing.assert_allclose(by_itk.pixels, by_pydicom.pixels, atol=1e-6)
    assert by_itk.window == pytest.approx(by_pydicom.window)
    assert by_itk.spacing == by_pydicom.spacing == (0.2, 0.3)
    brightest = by_itk.pixels.argmin() if kwargs.get("photometric") == "MONOCHROME1" else by_itk.pixels.argmax()
    assert np.unravel_index(brightest, by_itk.pixels.shape) == (2, 7)  # stored maximum


def _jpeg_lossless_copy(source, target):
    """Compress ``source`` to JPEG Lossless with ITK/GDCM (pydicom has no decoder for it without plugins)."""
    image_io = itk.GDCMImageIO.New()
    image_io.SetCompressor("JPEG")
    itk.imwrite(itk.imread(str(source)), str(target), imageio=image_io, compression=True)
    assert pydicom.dcmread(target).file_meta.TransferSyntaxUID == JPEG_LOSSLESS
    return target


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_auto_backend_falls_back_to_itk_for_jpeg_lossless(tmp_path, photometric):
    reference = write_dicom(IMAGE, tmp_path / "ref.dcm", bits_stored=16, spacing=(0.5, 0.5))
    compressed = _jpeg_lossless_copy(reference, tmp_path / "jpeg_lossless.dcm")
    if photometric == "MONOCHROME1":  # relabel the compressed stored values and the reference alike
        ds = pydicom.dcmread(compressed)
        ds.PhotometricInterpretation = "MONOCHROME1"
        save_dataset(ds, compressed)
        reference = write_dicom(IMAGE, tmp_path / "ref1.dcm", bits_stored=16, photometric="MONOCHROME1")
    expected = _read(reference, "pydicom", percentiles=(0, 100)).pixels
    decoded = _read(compressed, "auto", percentiles=(0, 100))
    np.testing.assert_allclose(decoded.pixels, expected, atol=1e-6)
    assert decoded.decoder == ("pydicom" if pydicom_can_decode(pydicom.uid.UID(JPEG_LOSSLESS)) else "itk")
    if photometric == "MONOCHROME1":  # the bright pixel became the darkest
        assert np.unravel_index(decoded.pixels.argmin(), decoded.pixels.shape) == (2, 7)


@pytest.mark.parametrize("transfer_syntax", [JPEG_LOSSLESS, JPEG_LS_LOSSLESS])
def test_neither_backend_decodes_garbage(tmp_path, transfer_syntax):
    if pydicom_can_decode(pydicom.uid.UID(transfer_syntax)):
        pytest.skip("a pydicom decoder plugin for this transfer syntax is installed")
    path = fake_compressed_dicom(tmp_path / "garbage.dcm", transfer_syntax)
    with pytest.raises(MissingDecoderError, match="install .*python-gdcm") as err:
        _read(path, "auto")
    assert "pydicom:" in err.value.reason and "itk:" in err.value.reason and str(path) in str(err.value)


def test_itk_path_keeps_no_patient_data(tmp_path):
    """ITK's GDCM reader copies every tag (group 0010 included) into its own meta dictionary; none may leak."""
    patient = {"PatientName": "Phantom^Secret", "PatientID": "ID-SECRET-42", "PatientBirthDate": "19010203"}
    path = write_dicom(IMAGE, tmp_path / "phi.dcm", patient=patient, extra={"InstitutionName": "SecretClinic"})
    assert "Phantom^Secret" in dict(itk.imread(str(path))).get("0010|0010", "")  # ITK does copy it
    decoded = _read(path, "itk")
    meta, _ = build_meta(str(path), decoded)
    assert decoded.decoder == "itk" and set(meta) <= ALLOWED_META_KEYS
    text = repr(vars(decoded)) + repr(meta)
    for secret in ("Phantom", "Secret", "SECRET", "19010203"):
        assert secret not in text
