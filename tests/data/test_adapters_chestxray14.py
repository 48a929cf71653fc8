"""ChestX-ray14 adapter on a tiny fixture in the dataset's real layout (header quirks included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radlas_monai.data.adapters.nih_chestxray14 import build_datalist
from radlas_monai.data.datalist import load_datalist, write_datalist
from radlas_monai.data.vocabulary import CHESTXRAY14_FINDINGS
from radlas_monai.data.writers import write_png

DATA_ENTRY = """Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,\
OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,
00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171,
00000003_000.png,Hernia|Infiltration,0,3,74,F,PA,2500,2048,0.168,0.168,
00000004_000.png,Mass|Nodule,0,4,82,M,AP,2582,2989,0.143,0.143,
00000005_000.png,Pleural_Thickening,0,5,69,F,PA,2048,2500,0.168,0.168,
00000006_000.png,No Finding,0,6,30,F,PA,2048,2500,0.168,0.168,
"""
BBOX_LIST = """Image Index,Finding Label,Bbox [x,y,w,h],,,
00000003_000.png,Infiltrate,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661,,,
00000004_000.png,Mass,100,200,50,60,,,
00000004_000.png,Nodule,700.5,300.25,20,30,,,
"""
TRAIN_VAL = ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000005_000.png", "00000006_000.png"]
TEST = ["00000003_000.png", "00000004_000.png"]


@pytest.fixture
def nih_root(tmp_path: Path) -> Path:
    (tmp_path / "Data_Entry_2017.csv").write_text(DATA_ENTRY)
    (tmp_path / "BBox_List_2017.csv").write_text(BBOX_LIST)
    (tmp_path / "train_val_list.txt").write_text("\n".join(TRAIN_VAL) + "\n")
    (tmp_path / "test_list.txt").write_text("\n".join(TEST) + "\n")
    pixels = np.zeros((8, 8), np.uint8)
    for k, name in enumerate(TRAIN_VAL + TEST):
        if name == "00000006_000.png":
            continue  # listed but not downloaded
        write_png(pixels, tmp_path / f"images_00{1 + k % 2}" / "images" / name)  # Kaggle layout
    return tmp_path


def _by_image(datalist: dict) -> dict[str, dict]:
    return {Path(i["image"]).name: i for key in ("training", "validation", "test") for i in datalist[key]}


def test_official_test_list_and_patient_split(nih_root: Path) -> None:
    datalist = build_datalist(nih_root, validation_fraction=0.25, seed=0)
    assert datalist["class_names"] == list(CHESTXRAY14_FINDINGS)
    assert sorted(Path(i["image"]).name for i in datalist["test"]) == TEST
    train_val = datalist["training"] + datalist["validation"]
    assert sorted(Path(i["image"]).name for i in train_val) == TRAIN_VAL[:4]  # the missing image is left out
    assert len(datalist["validation"]) >= 1
    train_patients = {i["patient"] for i in datalist["training"]}
    assert not train_patients & {i["patient"] for i in datalist["validation"]}
    items = _by_image(datalist)
    assert items["00000001_000.png"]["patient"] == items["00000001_001.png"]["patient"] == "00000001"


def test_labels_boxes_and_spacing(nih_root: Path) -> None:
    items = _by_image(build_datalist(nih_root))
    first = items["00000001_001.png"]
    assert first["findings"] == ["Cardiomegaly", "Emphysema"]
    assert first["label"] == [int(c in ("Cardiomegaly", "Emphysema")) for c in CHESTXRAY14_FINDINGS]
    assert first["image"] == "images_002/images/00000001_001.png"
    assert first["spacing"] == pytest.approx([0.143 * 2729 / 1024, 0.143 * 2894 / 1024], abs=1e-6)
    assert items["00000002_000.png"]["findings"] == [] and sum(items["00000002_000.png"]["label"]) == 0
    infiltrate = items["00000003_000.png"]
    assert infiltrate["box_findings"] == ["Infiltration"]
    x, y, w, h = 225.084745762712, 547.019216763771, 86.7796610169491, 79.1864406779661
    assert infiltrate["boxes"][0] == pytest.approx([x, y, x + w, y + h], abs=1e-3)
    mass = items["00000004_000.png"]
    assert mass["boxes"] == [[100.0, 200.0, 150.0, 260.0], [700.5, 300.25, 720.5, 330.25]]
    assert mass["box_findings"] == ["Mass", "Nodule"]
    assert "boxes" not in first


def test_keep_missing_images_and_round_trip(nih_root: Path, tmp_path: Path) -> None:
    datalist = build_datalist(nih_root, require_images=False)
    names = [Path(i["image"]).name for k in ("training", "validation") for i in datalist[k]]
    assert "00000006_000.png" in names
    path = write_datalist(datalist, tmp_path / "lists" / "nih.json", root=nih_root)
    loaded = load_datalist(path, "test")
    assert {Path(i["image"]).name for i in loaded} == set(TEST)
    assert all(Path(i["image"]).is_file() for i in loaded)


def test_missing_lists_raise(nih_root: Path) -> None:
    (nih_root / "test_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test_list.txt"):
        build_datalist(nih_root)
