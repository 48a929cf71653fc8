"""JSRT nodule adapter (512-px CSV layout) on a fixture mimicking it, and on the real shared folder if present."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from radlas_monai.data.adapters.jsrt_nodule import build_datalist
from radlas_monai.data.datalist import load_datalist, write_datalist
from radlas_monai.data.writers import write_png

SHARED_JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"
HEADER = ("image,study_id,label,state,subtlety,size_mm,age,sex,position,diagnosis,cx,cy,radius,x0,y0,x1,y1,"
          "cx_2048,cy_2048,width,height,win_lo,win_hi")  # fmt: skip
ROWS = [
    "images/JPCLN001.png,JPCLN001,1,malignant,5,15.0,53,Male,l.upper lobe,lung cancer,408.5,173.0,10.71,397.79,"
    "162.29,419.21,183.71,1634.0,692.0,512,512,143.0,245.0",
    "images/JPCLN002.png,JPCLN002,1,benign,5,30.0,78,Female,l.upper lobe(S5),pulmonary hematoma,403.5,272.5,21.43,"
    "382.07,251.07,424.93,293.93,1614.0,1090.0,512,512,99.0,233.0",
    "images/JPCLN003.png,JPCLN003,1,malignant,5,30.0,63,Female,l.upper lobe(S1+2),lung cancer,325.75,111.75,21.43,"
    "304.32,90.32,347.18,133.18,1303.0,447.0,512,512,150.0,247.0",
    "images/JPCNN001.png,JPCNN001,0,non-nodule,,,44,Male,,,,,,,,,,,,512,512,120.0,240.0",
    "images/JPCNN002.png,JPCNN002,0,non-nodule,,,72,Male,,,,,,,,,,,,512,512,114.0,242.0",
    "images/JPCNN003.png,JPCNN003,0,non-nodule,,,51,Female,,,,,,,,,,,,512,512,110.0,238.0",
]


@pytest.fixture
def nodule_root(tmp_path: Path) -> Path:
    (tmp_path / "labels.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    for row in ROWS:
        image, study = row.split(",")[:2]
        write_png(np.zeros((8, 8), np.uint8), tmp_path / image)
        if study != "JPCNN003":  # one image without a lung mask
            write_png(np.zeros((8, 8), np.uint8), tmp_path / "lung_masks" / f"{study}.png")
    return tmp_path


def _all(datalist: dict) -> list[dict]:
    return [i for k in ("training", "validation", "test") for i in datalist[k]]


def test_items(nodule_root: Path) -> None:
    datalist = build_datalist(nodule_root, split=(0.5, 0.5, 0.0), seed=0)
    items = {i["patient"]: i for i in _all(datalist)}
    assert datalist["class_names"] == ["Nodule"] and len(items) == 6
    first = items["JPCLN001"]
    assert first["image"] == "images/JPCLN001.png" and first["lung_mask"] == "lung_masks/JPCLN001.png"
    assert first["findings"] == ["Nodule"] and first["label"] == [1]
    assert first["centers"] == [[408.5, 173.0]] and first["radii"] == [10.71]
    assert first["boxes"] == [[397.79, 162.29, 419.21, 183.71]] and first["box_findings"] == ["Nodule"]
    assert first["spacing"] == [0.7, 0.7]
    normal = items["JPCNN001"]
    assert normal["findings"] == [] and normal["label"] == [0] and "boxes" not in normal and "centers" not in normal
    assert "lung_mask" not in items["JPCNN003"]
    assert [len(datalist[k]) for k in ("training", "validation", "test")] == [3, 3, 0]


def test_split_is_seeded_and_folds_partition(nodule_root: Path) -> None:
    first = build_datalist(nodule_root, seed=5)
    assert first == build_datalist(nodule_root, seed=5)
    held_out = []
    for fold in range(3):
        datalist = build_datalist(nodule_root, fold=fold, num_folds=3, seed=1)
        assert len(datalist["validation"]) == 2 and len(datalist["training"]) == 4 and datalist["test"] == []
        assert {i["fold"] for i in datalist["validation"]} == {fold}
        held_out += [i["patient"] for i in datalist["validation"]]
    assert sorted(held_out) == sorted(r.split(",")[1] for r in ROWS)  # every image held out exactly once


def test_missing_image_and_round_trip(nodule_root: Path, tmp_path: Path) -> None:
    (nodule_root / "images" / "JPCNN002.png").unlink()
    datalist = build_datalist(nodule_root)
    assert "JPCNN002" not in {i["patient"] for i in _all(datalist)}
    path = write_datalist(datalist, nodule_root / "datalist.json")
    assert all(Path(i["image"]).is_file() for i in load_datalist(path, "training"))


@pytest.mark.skipif(not SHARED_JSRT.exists(), reason="the shared JSRT folder (../shared/data/jsrt_nodule) is absent")
def test_real_folder() -> None:
    datalist = build_datalist(SHARED_JSRT, seed=0)
    items = _all(datalist)
    assert len(items) == 247 and sum(i["label"][0] for i in items) == 154
    assert all(Path(SHARED_JSRT / i["image"]).is_file() and Path(SHARED_JSRT / i["lung_mask"]).is_file() for i in items)
    with open(SHARED_JSRT / "labels.csv", newline="") as handle:
        rows = {r["study_id"]: r for r in csv.DictReader(handle)}
    for item in items:
        if item["label"] == [1]:
            row = rows[item["patient"]]
            assert item["boxes"][0] == pytest.approx([float(row[k]) for k in ("x0", "y0", "x1", "y1")], abs=0.011)
    sizes = [len(datalist[k]) for k in ("training", "validation", "test")]
    assert sizes == [173, 37, 37]
