"""Tests of the DICOM reader with the pydicom backend (ITK is tested in test_readers_dicom_itk.py)."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pydicom
import pytest
from radiograph_fixtures import (
    JPEG_2000,
    JPEG_LOSSLESS,
    JPEG_LS_LOSSLESS,
    asymmetric_image,
    colour_dicom,
    dicom_element_bytes,
    drop_preamble,
    fake_compressed_dicom,
    patch_once,
    save_dataset,
    truncate_copy,
    voi_lut_item,
)

from radlas_monai.data.errors import (
    ImageTooLargeError,
    InvalidPixelDataError,
    MissingDecoderError,
    NotA2DImageError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from radlas_monai.data.readers.base import ReadOptions
from radlas_monai.data.readers.dicom import pydicom_can_decode
from radlas_monai.data.readers.dispatch import read_radiograph
from radlas_monai.data.readers.window import normalize_to_unit
from radlas_monai.data.writers import write_dicom

IMAGE = asymmetric_image()  # 12-bit stored values, bright pixel 4000 at (row 2, col 7)
FULL = (0, 100)  # percentiles giving the min / max window, for exact expectations


def _read(path, warnings: list | None = None, **options):
    options.setdefault("dicom_backend", "pydicom")
    sink = warnings if warnings is not None else []
    return read_radiograph(path, ReadOptions(**options), lambda kind, message: sink.append((kind, message)))


# ------------------------------------------------------------------------------------- intensities
def test_monochrome2_percentile_window_and_orientation(tmp_path):
    decoded = _read(write_dicom(IMAGE, tmp_path / "a.dcm", spacing=(0.1, 0.2)), percentiles=FULL)
    np.testing.assert_allclose(decoded.pixels, normalize_to_unit(IMAGE, IMAGE.min(), IMAGE.max()), atol=1e-6)
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)
    assert decoded.window == (float(IMAGE.min()), float(IMAGE.max()))
    assert (decoded.photometric_interpretation, decoded.bits_stored, decoded.modality) == ("MONOCHROME2", 12, "DX")
    assert decoded.spacing == (0.1, 0.2) and decoded.decoder == "pydicom"


def test_default_percentile_window_clips_outliers(tmp_path):
    values = np.tile(np.arange(200, dtype=np.uint16) * 10, (10, 1))
    decoded = _read(write_dicom(values, tmp_path / "p.dcm"))
    low, high = np.percentile(values, [0.5, 99.5])
    assert decoded.window == pytest.approx((low, high))


# [photometric, window kwargs]: MONOCHROME1 stored values are (4095 - v); its LINEAR window centre is
# 4096 - c (the -0.5 of the standard's formula makes the inverse ramp's centre shift by one).
MONO_CASES = [
    ["none", {}, {}],
    ["linear", {"window": (2000.0, 3000.0)}, {"window": (4096 - 2000.0, 3000.0)}],
    [
        "linear_exact",
        {"window": (2000.0, 3000.0), "extra": {"VOILUTFunction": "LINEAR_EXACT"}},
        {"window": (4095 - 2000.0, 3000.0), "extra": {"VOILUTFunction": "LINEAR_EXACT"}},
    ],
]


@pytest.mark.parametrize("name, mono2_kwargs, mono1_kwargs", MONO_CASES)
def test_monochrome1_is_inverted_to_the_same_tensor(tmp_path, name, mono2_kwargs, mono1_kwargs):
    mono2 = _read(write_dicom(IMAGE, tmp_path / "m2.dcm", **mono2_kwargs), percentiles=FULL)
    mono1 = _read(
        write_dicom(4095 - IMAGE, tmp_path / "m1.dcm", photometric="MONOCHROME1", **mono1_kwargs), percentiles=FULL
    )
    assert mono1.photometric_interpretation == "MONOCHROME1"
    np.testing.assert_allclose(mono1.pixels, mono2.pixels, atol=1e-5)
    assert np.unravel_index(mono1.pixels.argmax(), mono1.pixels.shape) == (2, 7)


def test_rescale_slope_intercept_then_window_in_modality_units(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "r.dcm", rescale=(2.0, -1000.0), window=(3000.0, 4001.0))
    decoded = _read(path)
    modality = IMAGE * 2.0 - 1000.0
    low, high = 3000.0 - 0.5 - 2000.0, 3000.0 - 0.5 + 2000.0
    assert decoded.window == (low, high)
    np.testing.assert_allclose(decoded.pixels, normalize_to_unit(modality, low, high), atol=1e-6)


def test_rescale_without_window_uses_percentiles_of_modality_values(tmp_path):
    decoded = _read(write_dicom(IMAGE, tmp_path / "r.dcm", rescale=(0.5, 10.0)), percentiles=FULL)
    assert decoded.window == (IMAGE.min() * 0.5 + 10.0, IMAGE.max() * 0.5 + 10.0)


def test_window_center_width(tmp_path):
    decoded = _read(write_dicom(IMAGE, tmp_path / "w.dcm", window=(150.0, 101.0)))
    np.testing.assert_allclose(decoded.pixels, normalize_to_unit(IMAGE, 99.5, 199.5), atol=1e-6)
    assert decoded.window == (99.5, 199.5)


def test_multi_valued_window_uses_the_first(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "w.dcm", extra={"WindowCenter": ["150", "2000"], "WindowWidth": ["101", "10"]})
    assert _read(path).window == (99.5, 199.5)


def test_sigmoid_window(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "s.dcm", window=(125.0, 50.0), extra={"VOILUTFunction": "SIGMOID"})
    expected = 1.0 / (1.0 + np.exp(-4.0 * (IMAGE - 125.0) / 50.0))
    np.testing.assert_allclose(_read(path).pixels, expected, atol=1e-6)


def test_unusable_window_falls_back_to_percentiles_with_a_warning(tmp_path):
    warnings: list = []
    decoded = _read(write_dicom(IMAGE, tmp_path / "w.dcm", window=(100.0, 0.0)), warnings, percentiles=FULL)
    assert decoded.window == (float(IMAGE.min()), float(IMAGE.max()))
    assert "window" in [kind for kind, _ in warnings]


@pytest.mark.parametrize("vr", ["US", "OW"])
def test_voi_lut_sequence_has_priority_over_window(tmp_path, vr):
    lut = np.arange(1000) * 4  # maps stored 100..1099 onto 0..3996
    path = write_dicom(
        IMAGE, tmp_path / "v.dcm", window=(2000.0, 4000.0), extra={"VOILUTSequence": [voi_lut_item(100, lut, vr)]}
    )
    decoded = _read(path)
    np.testing.assert_allclose(decoded.pixels, np.clip(IMAGE - 100, 0, 999) / 999.0, atol=1e-6)
    assert decoded.window == (100.0, 1099.0)


def test_inverting_voi_lut(tmp_path):
    lut = 4095 - np.arange(4096)
    decoded = _read(write_dicom(IMAGE, tmp_path / "v.dcm", extra={"VOILUTSequence": [voi_lut_item(0, lut)]}))
    np.testing.assert_allclose(decoded.pixels, 1.0 - IMAGE / 4095.0, atol=1e-6)


def test_modality_lut_sequence(tmp_path):
    lut = np.arange(4096) // 2
    item = voi_lut_item(0, lut)
    decoded = _read(write_dicom(IMAGE, tmp_path / "m.dcm", extra={"ModalityLUTSequence": [item]}), percentiles=FULL)
    assert decoded.window == (float(IMAGE.min() // 2), float(IMAGE.max() // 2))


def test_signed_stored_values(tmp_path):
    signed = IMAGE.astype(np.int32) - 2048
    decoded = _read(write_dicom(signed, tmp_path / "s.dcm"), percentiles=FULL)
    assert decoded.window == (float(signed.min()), float(signed.max()))
    assert np.unravel_index(decoded.pixels.argmax(), decoded.pixels.shape) == (2, 7)


def test_bits_above_bits_stored_are_masked_with_a_warning(tmp_path):
    warnings: list = []
    path = write_dicom(IMAGE, tmp_path / "b.dcm", extra={"BitsStored": 8, "HighBit": 7})
    decoded = _read(path, warnings, percentiles=FULL)
    masked = IMAGE & 0xFF
    assert decoded.window == (float(masked.min()), float(masked.max()))
    assert "bits_stored" in [kind for kind, _ in warnings] and decoded.bits_stored == 8


def test_rgb_dicom_reduces_to_luminance(tmp_path):
    grey = (IMAGE // 16).astype(np.uint8)
    decoded = _read(colour_dicom(tmp_path / "rgb.dcm", np.stack([grey] * 3, axis=-1)), percentiles=FULL)
    np.testing.assert_allclose(decoded.pixels, normalize_to_unit(grey, grey.min(), grey.max()), atol=1e-5)
    assert decoded.photometric_interpretation == "RGB"


def test_palette_colour_is_unsupported(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "p.dcm", extra={"PhotometricInterpretation": "PALETTE COLOR"})
    with pytest.raises(UnsupportedFormatError, match="palette"):
        _read(path)


# ------------------------------------------------------------------------------- spacing, modality
@pytest.mark.parametrize(
    "kwargs, expected",
    [
        [{"spacing": (0.15, 0.16)}, (0.15, 0.16)],
        [{"spacing": (0.15, 0.16), "spacing_tag": "ImagerPixelSpacing"}, (0.15, 0.16)],
        [{"spacing": (0.15, 0.16), "extra": {"ImagerPixelSpacing": ["0.2", "0.2"]}}, (0.15, 0.16)],
        [{"extra": {"NominalScannedPixelSpacing": ["0.3", "0.4"]}}, (0.3, 0.4)],
    ],
)
def test_spacing_tags(tmp_path, kwargs, expected):
    assert _read(write_dicom(IMAGE, tmp_path / "s.dcm", **kwargs)).spacing == expected


@pytest.mark.parametrize("case", ["missing", "nan", "zero"])
def test_missing_or_invalid_spacing_is_absent_with_a_warning(tmp_path, case):
    path = write_dicom(IMAGE, tmp_path / "s.dcm", spacing=None if case == "missing" else (0.5, 0.5))
    if case != "missing":
        old = dicom_element_bytes(0x0028, 0x0030, "DS", b"0.5\\0.5 ")
        new = dicom_element_bytes(0x0028, 0x0030, "DS", b"NaN\\NaN " if case == "nan" else b"0.0\\0.0 ")
        patch_once(path, old, new)
    warnings: list = []
    decoded = _read(path, warnings)
    assert decoded.spacing is None
    assert [kind for kind, _ in warnings] == ["spacing"]


@pytest.mark.parametrize("modality, warned", [["DX", False], ["CR", False], ["MG", False], ["CT", True], ["", True]])
def test_modality_policy(tmp_path, modality, warned):
    path = write_dicom(IMAGE, tmp_path / "m.dcm", modality=modality, spacing=(1, 1))
    warnings: list = []
    decoded = _read(path, warnings)
    assert decoded.modality == (modality or None)
    assert ("modality" in [kind for kind, _ in warnings]) == warned
    if warned:
        with pytest.raises(UnsupportedFormatError, match="not a radiograph modality"):
            _read(path, strict_modality=True)


# ------------------------------------------------------------------------------------- odd layouts
def test_preamble_less_dataset(tmp_path):
    source = write_dicom(IMAGE, tmp_path / "a.dcm", spacing=(0.1, 0.1))
    raw = drop_preamble(source, tmp_path / "raw.dcm")
    np.testing.assert_array_equal(_read(raw).pixels, _read(source).pixels)
    # without the .dcm suffix it is still recognised by its leading group-0008 tag
    renamed = raw.rename(tmp_path / "raw.bin")
    assert _read(renamed).source_format == "dicom"


def test_no_pixel_data_is_unsupported(tmp_path):
    ds = pydicom.dcmread(write_dicom(IMAGE, tmp_path / "sr.dcm"))
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    with pytest.raises(UnsupportedFormatError, match="no pixel data"):
        _read(save_dataset(ds, tmp_path / "sr.dcm"))


# --------------------------------------------------------------------------------------- bad files
def test_multi_frame_is_not_2d(tmp_path):
    frames = np.concatenate([IMAGE, IMAGE])
    path = write_dicom(frames, tmp_path / "mf.dcm", extra={"NumberOfFrames": 2, "Rows": IMAGE.shape[0]})
    with pytest.raises(NotA2DImageError, match="2 frames") as err:
        _read(path)
    assert str(path) in str(err.value)


def test_bomb_header_rejected_fast_without_allocating(tmp_path):
    path = write_dicom(IMAGE, tmp_path / "bomb.dcm", extra={"Rows": 30000, "Columns": 30000})
    start = time.perf_counter()
    tracemalloc.start()
    with pytest.raises(ImageTooLargeError, match="30000 x 30000") as err:
        _read(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 5_000_000
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "keep, match",
    [[-100, "pixel data has"], [0.5, "pixel data has"], [400, "before its pixel data"], [140, "before its pixel data"]],
)
def test_truncated_dicom(tmp_path, keep, match):
    full = write_dicom(np.tile(IMAGE, (4, 4)), tmp_path / "full.dcm")
    size = full.stat().st_size
    cut = truncate_copy(
        full, tmp_path / "cut.dcm", keep if isinstance(keep, float) else (size + keep if keep < 0 else keep)
    )
    with pytest.raises(TruncatedFileError, match=match) as err:
        _read(cut)
    assert str(cut) in str(err.value) and err.value.kind == "truncated"


@pytest.mark.parametrize("transfer_syntax", [JPEG_LOSSLESS, JPEG_LS_LOSSLESS])
def test_compressed_without_decoder_names_the_plugins(tmp_path, transfer_syntax):
    path = fake_compressed_dicom(tmp_path / "c.dcm", transfer_syntax)
    if pydicom_can_decode(pydicom.uid.UID(transfer_syntax)):
        pytest.skip("a pydicom decoder plugin for this transfer syntax is installed")
    with pytest.raises(MissingDecoderError, match="python-gdcm") as err:
        _read(path)
    assert str(path) in str(err.value) and err.value.kind == "missing_decoder"


def test_corrupt_jpeg2000_is_missing_decoder_or_invalid(tmp_path):
    path = fake_compressed_dicom(tmp_path / "j2k.dcm", JPEG_2000)
    expected = InvalidPixelDataError if pydicom_can_decode(pydicom.uid.UID(JPEG_2000)) else MissingDecoderError
    with pytest.raises(expected, match="JPEG 2000") as err:
        _read(path)
    if expected is MissingDecoderError:
        assert "pylibjpeg-openjpeg" in str(err.value)


@pytest.mark.parametrize("slope_bytes", [b"NaN ", b"inf ", b"0   "])
def test_corrupt_rescale_slope(tmp_path, slope_bytes):
    path = write_dicom(IMAGE, tmp_path / "s.dcm", rescale=(9.5, 0.0))
    patch_once(
        path, dicom_element_bytes(0x0028, 0x1053, "DS", b"9.5 "), dicom_element_bytes(0x0028, 0x1053, "DS", slope_bytes)
    )
    with pytest.raises(InvalidPixelDataError, match="RescaleSlope") as err:
        _read(path)
    assert str(path) in str(err.value)


def test_constant_dicom_is_invalid(tmp_path):
    with pytest.raises(InvalidPixelDataError, match="constant"):
        _read(write_dicom(np.full((8, 8), 100, dtype=np.uint16), tmp_path / "c.dcm"))


def test_no_patient_data_in_result_or_warnings(tmp_path):
    patient = {"PatientName": "Phantom^Secret", "PatientID": "ID-SECRET-42", "PatientBirthDate": "19010203"}
    path = write_dicom(
        IMAGE, tmp_path / "phi.dcm", modality="OT", patient=patient, extra={"InstitutionName": "SecretClinic"}
    )
    warnings: list = []
    decoded = _read(path, warnings)
    text = repr(vars(decoded)) + repr(warnings)
    for secret in ("Phantom", "Secret", "SECRET", "19010203"):
        assert secret not in text
