"""SIIM-ACR adapter on a tiny fixture in the real layout (" EncodedPixels", nested DICOM folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radlas_monai.data.adapters.siim_acr import build_datalist, read_rle_table
from radlas_monai.data.datalist import load_datalist, write_datalist
from radlas_monai.data.rle import rle_encode
from radlas_monai.data.writers import write_dicom

ROWS, COLUMNS = 12, 10  # a small image grid, taken from the DICOM headers
IDS = [f"1.2.276.0.7230010.3.1.4.8323329.{n}.1517875165.8780{n}" for n in (1000, 1001, 1002, 1003)]
COMPONENT_A = np.zeros((ROWS, COLUMNS), np.uint8)
COMPONENT_A[2:5, 1:3] = 1
COMPONENT_B = np.zeros((ROWS, COLUMNS), np.uint8)
COMPONENT_B[8:11, 6:9] = 1
COMPONENT_C = np.zeros((ROWS, COLUMNS), np.uint8)
COMPONENT_C[0, 9] = COMPONENT_C[11, 0] = 1


@pytest.fixture
def siim_root(tmp_path: Path) -> Path:
    root = tmp_path / "siim"
    rows = [
        f"{IDS[0]}, -1",
        f"{IDS[1]}, {rle_encode(COMPONENT_A)}",
        f"{IDS[1]}, {rle_encode(COMPONENT_B)}",  # a second component of the same image
        f"{IDS[2]}, {rle_encode(COMPONENT_C)}",
        f"{IDS[3]}, -1",  # no DICOM for this id
    ]
    root.mkdir()
    (root / "train-rle.csv").write_text("ImageId, EncodedPixels\n" + "\n".join(rows) + "\n")
    patients = ["17d405a3-a0d2-4901-b33a-63906aa48d9f", "5f0c6bc4-6e1b-4d4d-9a0f-2d3c2c0e7b21"]
    for k, image_id in enumerate(IDS[:3]):
        study = f"1.2.276.0.7230010.3.1.2.8323329.{1000 + k}.1517875165.878026"
        series = f"1.2.276.0.7230010.3.1.3.8323329.{1000 + k}.1517875165.878025"
        path = root / "dicom-images-train" / study / series / f"{image_id}.dcm"
        write_dicom(np.zeros((ROWS, COLUMNS), np.uint16), path, modality="CR",
                    patient={"PatientID": patients[min(k, 1)]})  # images 1 and 2: one patient  # fmt: skip
    return root


def _mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_read_rle_table_handles_the_leading_space(siim_root: Path) -> None:
    table = read_rle_table(siim_root / "train-rle.csv")
    assert list(table) == IDS and table[IDS[0]] == [] and len(table[IDS[1]]) == 2


def test_masks_are_decoded_and_written(siim_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "derived"
    datalist = build_datalist(siim_root, out, split=(1.0,))
    items = {Path(i["image"]).stem: i for i in datalist["training"]}
    assert set(items) == set(IDS[:3])  # the id without a DICOM is left out
    two = items[IDS[1]]
    assert two["mask"] == f"../derived/masks/{IDS[1]}.png" and two["findings"] == ["Pneumothorax"]
    assert two["image"].startswith("dicom-images-train/1.2.276.0.7230010.3.1.2.") and two["label"] == [1]
    np.testing.assert_array_equal(_mask(out / "masks" / f"{IDS[1]}.png"), (COMPONENT_A | COMPONENT_B) * 255)
    np.testing.assert_array_equal(_mask(out / "masks" / f"{IDS[2]}.png"), COMPONENT_C * 255)
    negative = _mask(out / "masks" / f"{IDS[0]}.png")
    assert negative.shape == (ROWS, COLUMNS) and negative.dtype == np.uint8 and not negative.any()
    assert items[IDS[0]]["findings"] == [] and items[IDS[0]]["label"] == [0]
    assert items[IDS[1]]["patient"] == items[IDS[2]]["patient"] == "5f0c6bc4-6e1b-4d4d-9a0f-2d3c2c0e7b21"
    loaded = load_datalist(write_datalist(datalist, tmp_path / "lists" / "siim.json", root=siim_root))
    assert all(Path(i["mask"]).is_file() and Path(i["image"]).is_file() for i in loaded)


def test_patients_stay_together(siim_root: Path, tmp_path: Path) -> None:
    for seed in range(4):
        datalist = build_datalist(siim_root, tmp_path / "d", split=(0.34, 0.33, 0.33), seed=seed)
        together = [k for k in ("training", "validation", "test") if any(IDS[1] in i["image"] for i in datalist[k])]
        assert any(IDS[2] in i["image"] for i in datalist[together[0]])


def test_existing_masks_are_kept_unless_overwrite(siim_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "d"
    build_datalist(siim_root, out)
    path = out / "masks" / f"{IDS[2]}.png"
    Image.fromarray(np.zeros((ROWS, COLUMNS), np.uint8)).save(path)
    build_datalist(siim_root, out)
    assert not _mask(path).any()
    build_datalist(siim_root, out, overwrite=True)
    np.testing.assert_array_equal(_mask(path), COMPONENT_C * 255)


def test_without_dicom_headers(siim_root: Path, tmp_path: Path) -> None:
    datalist = build_datalist(siim_root, tmp_path / "d", patient_from_dicom=False, image_size=(ROWS, COLUMNS))
    patients = {i["patient"] for k in ("training", "validation", "test") for i in datalist[k]}
    assert patients == set(IDS[:3])
    with pytest.raises(ValueError, match=f"SIIM-ACR {IDS[1]}: run ends at pixel"):
        build_datalist(siim_root, tmp_path / "e", patient_from_dicom=False, image_size=(4, 4))
