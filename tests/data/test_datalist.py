"""Tests of radlas_monai.data.datalist: folder / CSV builders, patient splits, label fractions, write / load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from monai.data import load_decathlon_datalist

from radlas_monai.data.datalist import (
    datalist_from_csv,
    datalist_from_folder,
    is_dicom_file,
    kfold_by_patient,
    load_datalist,
    sample_label_fraction,
    split_by_patient,
    write_datalist,
)
from radlas_monai.data.writers import write_dicom, write_png

SPLITS = ("training", "validation", "test")


def _all_items(datalist: dict) -> list[dict]:
    return [item for key in SPLITS for item in datalist[key]]


def _items(num_patients: int, per_patient: list[int] | None = None) -> list[dict]:
    per_patient = per_patient or [1] * num_patients
    return [{"image": f"p{p}/{k}.png", "patient": f"p{p}"} for p in range(num_patients) for k in range(per_patient[p])]


def _patients(items: list[dict]) -> set[str]:
    return {i["patient"] for i in items}


# ----------------------------------------------------------------------------------------------------------------------
# folder


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    pixels = np.zeros((4, 5), dtype=np.uint8)
    write_png(pixels, tmp_path / "patient001" / "study1" / "a.png")
    write_png(pixels, tmp_path / "patient001" / "study2" / "b.PNG")
    write_png(pixels, tmp_path / "patient002" / "c.png")
    write_dicom(np.zeros((4, 5), np.uint16), tmp_path / "patient002" / "IM0001")  # no suffix
    write_dicom(np.zeros((4, 5), np.uint16), tmp_path / "loose" / "1.2.840.113619.2.55")  # UID-like suffix
    write_dicom(np.zeros((4, 5), np.uint16), tmp_path / "loose" / "DICOMDIR")  # never an image
    (tmp_path / "loose" / "notes").write_bytes(b"not a dicom file" * 20)
    (tmp_path / "loose" / "readme.txt").write_text("text")
    (tmp_path / "loose" / "e.nii.gz").write_bytes(b"\x1f\x8b fake gzip")
    (tmp_path / "top.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "d.png").write_bytes(b"x")
    return tmp_path


def test_is_dicom_file(tmp_path: Path) -> None:
    write_dicom(np.zeros((4, 4), np.uint16), tmp_path / "x")
    (tmp_path / "y").write_bytes(b"\0" * 128 + b"DICX")
    (tmp_path / "short").write_bytes(b"DICM")
    assert is_dicom_file(tmp_path / "x")
    assert not is_dicom_file(tmp_path / "y")
    assert not is_dicom_file(tmp_path / "short")
    assert not is_dicom_file(tmp_path / "absent")


def test_folder_finds_images_and_sniffs_extensionless_dicom(image_tree: Path) -> None:
    datalist = datalist_from_folder(image_tree, split=(1.0, 0.0, 0.0))
    images = [i["image"] for i in datalist["training"]]
    assert images == [
        "loose/1.2.840.113619.2.55",
        "loose/e.nii.gz",
        "patient001/study1/a.png",
        "patient001/study2/b.PNG",
        "patient002/IM0001",
        "patient002/c.png",
        "top.jpg",
    ]
    assert datalist["validation"] == [] and datalist["test"] == []
    assert datalist["class_names"] == [] and datalist["name"] == image_tree.name


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"include_extensionless_dicom": False}, {"loose/e.nii.gz", "patient001/study1/a.png",
                                                   "patient001/study2/b.PNG", "patient002/c.png", "top.jpg"}),
        ({"recursive": False}, {"top.jpg"}),
        ({"extensions": (".png",)}, {"loose/1.2.840.113619.2.55", "patient001/study1/a.png",
                                     "patient001/study2/b.PNG", "patient002/IM0001", "patient002/c.png"}),
    ],
)  # fmt: skip
def test_folder_options(image_tree: Path, kwargs: dict, expected: set[str]) -> None:
    datalist = datalist_from_folder(image_tree, split=(1.0,), **kwargs)
    assert {i["image"] for i in datalist["training"]} == expected


def test_folder_patients_from_layout(image_tree: Path) -> None:
    by_image = {i["image"]: i["patient"] for i in _all_items(datalist_from_folder(image_tree))}
    assert by_image["patient001/study1/a.png"] == by_image["patient001/study2/b.PNG"] == "patient001"
    assert by_image["patient002/IM0001"] == "patient002"
    loose = by_image["loose/1.2.840.113619.2.55"]
    assert loose.startswith("anon-") and loose != by_image["loose/e.nii.gz"]  # per image, pseudonymized
    level0 = {i["image"]: i["patient"] for i in _all_items(datalist_from_folder(image_tree, patient_level=0))}
    assert level0["loose/1.2.840.113619.2.55"] == level0["loose/e.nii.gz"]  # grouped by the first folder
    assert level0["patient001/study1/a.png"] != "patient001" and level0["patient001/study1/a.png"].startswith("anon-")
    none = {i["image"]: i["patient"] for i in _all_items(datalist_from_folder(image_tree, patient_level=None))}
    assert none["patient001/study1/a.png"] != none["patient001/study2/b.PNG"]
    with pytest.raises(ValueError, match="patient_level"):
        datalist_from_folder(image_tree, patient_level="series")


def test_folder_split_keeps_patients_whole(tmp_path: Path) -> None:
    for p in range(10):
        for k in range(3):
            (tmp_path / f"patient{p:03d}").mkdir(exist_ok=True)
            (tmp_path / f"patient{p:03d}" / f"{k}.png").write_bytes(b"x")
    datalist = datalist_from_folder(tmp_path, split=(0.8, 0.2, 0.0), seed=3)
    assert [len(datalist[k]) for k in SPLITS] == [24, 6, 0]
    assert not _patients(datalist["training"]) & _patients(datalist["validation"])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        datalist_from_folder(tmp_path / "absent")


# ----------------------------------------------------------------------------------------------------------------------
# CSV


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_csv_findings_boxes_centres_and_patients(tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "table.csv",
        "image,findings,x,y,w,h,cx,cy,r,mask,patient",
        [
            "a.png,Pleural Effusion|Nodule,1,2,3,4,,,,m/a.png,P1",
            "a.png,Nodule,10,20,5,5,12,22,2.5,,P1",  # a second row of the same image adds a box and a centre
            "b.png,No Finding,,,,,,,,,P1",
            'c.png,"Mass,Infiltration",,,,,,,,,P2',
        ],
    )
    datalist = datalist_from_csv(csv_path, findings_column="findings", box_columns=("x", "y", "w", "h"),
                                 box_format="xywh", center_columns=("cx", "cy"), radius_column="r",
                                 mask_column="mask", patient_column="patient", split=(1.0,))  # fmt: skip
    assert datalist["class_names"] == ["Infiltration", "Effusion", "Nodule", "Mass"]  # vocabulary order
    a, b, c = datalist["training"]
    assert a["findings"] == ["Effusion", "Nodule"] and a["label"] == [0, 1, 1, 0]
    assert a["boxes"] == [[1.0, 2.0, 4.0, 6.0], [10.0, 20.0, 15.0, 25.0]]
    assert "box_findings" not in a  # the first row has two findings: the box's finding is ambiguous
    assert a["centers"] == [[12.0, 22.0]] and a["radii"] == [2.5] and a["mask"] == "m/a.png"
    assert b["findings"] == [] and b["label"] == [0, 0, 0, 0] and "boxes" not in b
    assert c["findings"] == ["Mass", "Infiltration"] and c["patient"] == "P2" and a["patient"] == b["patient"] == "P1"


def test_csv_label_columns_with_uncertain_and_box_finding_column(tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "t.csv",
        "path,Cardiomegaly,Pleural Effusion,x0,y0,x1,y1,box_label",
        ["img/1.png,1.0,-1.0,0,0,5,5,cardiomegaly", "img/2.png,,0,,,,,", "img/3.png,0.0,1,,,,,"],
    )
    datalist = datalist_from_csv(
        csv_path,
        image_column="path",
        label_columns=["Cardiomegaly", "Pleural Effusion"],
        box_columns=("x0", "y0", "x1", "y1"),
        box_finding_column="box_label",
        split=(1.0,),
    )
    one, two, three = datalist["training"]
    assert datalist["class_names"] == ["Cardiomegaly", "Effusion"]
    assert one["label"] == [1, -1] and one["findings"] == ["Cardiomegaly"]
    assert one["boxes"] == [[0.0, 0.0, 5.0, 5.0]] and one["box_findings"] == ["Cardiomegaly"]
    assert two["label"] == [0, 0] and three["label"] == [0, 1] and three["findings"] == ["Effusion"]
    assert one["patient"].startswith("anon-") and one["patient"] != two["patient"]  # no patient column


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"findings_column": "nope"}, KeyError, "missing columns \\['nope'\\]"),
        ({"label_columns": ["Nodule"]}, ValueError, "row 3: column 'Nodule' holds 'maybe'"),
        ({"box_format": "cxcywh"}, ValueError, "box_format"),
        ({"box_columns": ("Nodule",)}, ValueError, "box_columns needs 4"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    csv_path = _write_csv(tmp_path / "t.csv", "image,Nodule", ["a.png,1", "b.png,maybe"])
    with pytest.raises(error, match=match):
        datalist_from_csv(csv_path, **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# splits and label fractions


@pytest.mark.parametrize(
    "items, fractions, expected_sizes",
    [
        (_items(20), (0.7, 0.15, 0.15), [14, 3, 3]),
        (_items(10), (0.9, 0.1), [9, 1, 0]),
        (_items(10), (1.0, 0.0, 0.0), [10, 0, 0]),
        (_items(4, [5, 1, 1, 1]), (0.5, 0.25, 0.25), [5, 2, 1]),  # the 5-image patient cannot be cut
    ],
)
def test_split_by_patient_sizes(items: list[dict], fractions: tuple, expected_sizes: list[int]) -> None:
    splits = split_by_patient(items, fractions, seed=0)
    assert sorted(len(splits[k]) for k in SPLITS) == sorted(expected_sizes)
    assert len(splits["training"]) == expected_sizes[0]
    groups = [_patients(splits[k]) for k in SPLITS]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert sum(len(splits[k]) for k in SPLITS) == len(items)


def test_split_by_patient_is_deterministic_and_order_free() -> None:
    items = _items(30, [1 + (p % 3) for p in range(30)])
    first = split_by_patient(items, seed=7)
    assert first == split_by_patient(items, seed=7)
    shuffled = [items[i] for i in np.random.default_rng(1).permutation(len(items))]
    again = split_by_patient(shuffled, seed=7)
    assert all(_patients(first[k]) == _patients(again[k]) for k in SPLITS)
    positions = [items.index(i) for i in first["training"]]
    assert positions == sorted(positions)  # input order kept inside a split
    assert _patients(split_by_patient(items, seed=8)["test"]) != _patients(first["test"])


@pytest.mark.parametrize("fractions", [(0.5, 0.6), (-0.1, 1.1), (1.0, 0.0, 0.0, 0.0), ()])
def test_split_by_patient_rejects_bad_fractions(fractions: tuple) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_by_patient(_items(3), fractions)


def test_kfold_by_patient() -> None:
    items = _items(12, [2, 1] * 6)
    folds = kfold_by_patient(items, num_folds=3, seed=0)
    assert sorted(len(f) for f in folds) == [6, 6, 6]
    assert sorted(i["image"] for f in folds for i in f) == sorted(i["image"] for i in items)
    assert all(not _patients(folds[a]) & _patients(folds[b]) for a in range(3) for b in range(a + 1, 3))
    with pytest.raises(ValueError, match="num_folds"):
        kfold_by_patient(items, num_folds=13)


def test_sample_label_fraction_samples_whole_patients() -> None:
    items = _items(20, [1, 2, 3, 4] * 5)
    ten = sample_label_fraction(items, 0.1, seed=0)
    half = sample_label_fraction(items, 0.5, seed=0)
    assert len(_patients(ten)) == 2 and len(_patients(half)) == 10
    for subset in (ten, half):
        assert all(sum(i["patient"] == p for i in subset) == sum(i["patient"] == p for i in items)
                   for p in _patients(subset))  # fmt: skip
    assert _patients(ten) <= _patients(half)  # nested for one seed
    assert sample_label_fraction(items, 0.1, seed=0) == ten
    assert len(_patients(sample_label_fraction(items, 0.001, seed=0))) == 1
    assert sample_label_fraction(items, 1.0) == items
    with pytest.raises(ValueError, match="fraction"):
        sample_label_fraction(items, 0.0)


# ----------------------------------------------------------------------------------------------------------------------
# write / load


def _datalist() -> dict:
    item = {"image": "imgs/a.png", "label": [1, 0], "findings": ["Nodule"], "patient": "p1", "mask": "masks/a.png",
            "boxes": [[1.0, 2.0, 3.0, 4.0]], "spacing": [np.float32(0.5), 0.5],
            "centers": np.array([[2.0, 3.0]])}  # fmt: skip
    return {"name": "t", "description": "d", "class_names": ["Nodule", "Mass"], "training": [item],
            "validation": [{"image": "imgs/b.png", "label": [0, 0], "patient": "p2"}], "test": []}  # fmt: skip


def test_write_then_load_with_monai(tmp_path: Path) -> None:
    path = write_datalist(_datalist(), tmp_path / "out" / "datalist.json")
    assert sorted(os.listdir(path.parent)) == ["datalist.json"]  # no temporary file left behind
    assert json.loads(path.read_text())["training"][0]["spacing"] == [0.5, 0.5]
    monai_items = load_decathlon_datalist(path, data_list_key="training", base_dir=path.parent)
    assert monai_items[0]["image"] == str(tmp_path / "out" / "imgs" / "a.png")
    assert monai_items[0]["label"] == [1, 0]
    items = load_datalist(path, "training")
    assert items[0]["image"] == str(tmp_path / "out" / "imgs" / "a.png")
    assert items[0]["mask"] == str(tmp_path / "out" / "masks" / "a.png")  # resolved even though it does not exist
    assert items[0]["centers"] == [[2.0, 3.0]] and items[0]["patient"] == "p1"
    assert load_datalist(path, "test") == []


def test_load_keeps_non_path_keys_verbatim(tmp_path: Path) -> None:
    path = write_datalist(_datalist(), tmp_path / "datalist.json")
    (tmp_path / "p1").mkdir()  # a folder named like the patient: MONAI's loader would turn "p1" into a path
    (tmp_path / "Nodule").mkdir()
    assert load_decathlon_datalist(path, data_list_key="training")[0]["patient"] == str(tmp_path / "p1")
    item = load_datalist(path)[0]
    assert item["patient"] == "p1" and item["findings"] == ["Nodule"]


def test_load_missing_split_names_file_and_splits(tmp_path: Path) -> None:
    data = _datalist()
    del data["test"]
    path = write_datalist(data, tmp_path / "d.json")
    with pytest.raises(
        ValueError, match=r"d\.json has no split 'test'; available splits: \['training', 'validation'\]"
    ):
        load_datalist(path, "test")
    with pytest.raises(FileNotFoundError, match="absent.json"):
        load_datalist(tmp_path / "absent.json")


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    path = write_datalist(_datalist(), tmp_path / "d.json")
    before = path.read_bytes()
    broken = _datalist()
    broken["training"][0]["extra"] = object()  # not serializable
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_datalist(broken, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["d.json"]
    with pytest.raises(ValueError, match="training\\[0\\] is not an item"):
        write_datalist({"training": [{"label": [1]}]}, path)


def test_write_rebases_paths_to_the_json_folder(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    path = write_datalist(_datalist(), tmp_path / "lists" / "d.json", root=root)
    raw = json.loads(path.read_text())
    assert raw["training"][0]["image"] == "../dataset/imgs/a.png"
    assert raw["training"][0]["mask"] == "../dataset/masks/a.png"
    assert load_datalist(path)[0]["image"] == str(root / "imgs" / "a.png")
    same = write_datalist(_datalist(), root / "d.json", root=root)
    assert json.loads(same.read_text())["training"][0]["image"] == "imgs/a.png"


def test_multi_channel_image_lists(tmp_path: Path) -> None:
    data = {"training": [{"image": ["a/x.png", "a/y.png"], "label": [1], "patient": "p"}]}
    path = write_datalist(data, tmp_path / "lists" / "d.json", root=tmp_path / "data")
    assert json.loads(path.read_text())["training"][0]["image"] == ["../data/a/x.png", "../data/a/y.png"]
    item = load_datalist(path)[0]
    assert item["image"] == [str(tmp_path / "data" / "a" / "x.png"), str(tmp_path / "data" / "a" / "y.png")]
    assert item["label"] == [1]
