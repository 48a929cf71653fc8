"""CheXpert adapter on a tiny fixture in the real layout (train.csv / valid.csv, patientXXXXX/studyN/viewN)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radlas_monai.data.adapters.chexpert import CHEXPERT_CLASSES, build_datalist, image_path_from_csv

HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
    "Support Devices"
)
PREFIX = "CheXpert-v1.0-small"
#                                                                NF  EC  Cm  LO  LL  Ed  Co  Pn  At  Px  PE  PO  Fr SD
TRAIN = [
    f"{PREFIX}/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0",
    f"{PREFIX}/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
    f"{PREFIX}/train/patient00002/study1/view1_frontal.jpg,Female,83,Frontal,AP,,,,1.0,,,-1.0,,,,,,1.0,",
    f"{PREFIX}/train/patient00002/study1/view2_lateral.jpg,Female,83,Lateral,,,,,1.0,,,-1.0,,,,,,1.0,",
    f"{PREFIX}/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,",
    f"{PREFIX}/train/patient00004/study1/view1_frontal.jpg,Female,20,Frontal,PA,1.0,0.0,,,,,0.0,,,0.0,,,,",
    f"{PREFIX}/train/patient00005/study1/view1_frontal.jpg,Male,33,Frontal,PA,1.0,,0.0,,,,,,,,,,,1.0",
]  # fmt: skip
VALID = [
    f"{PREFIX}/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,"
    "0.0,0.0,0.0,0.0",
]


@pytest.fixture
def chexpert_root(tmp_path: Path) -> Path:
    (tmp_path / "train.csv").write_text("\n".join([HEADER, *TRAIN]) + "\n")
    (tmp_path / "valid.csv").write_text("\n".join([HEADER, *VALID]) + "\n")
    for row in TRAIN + VALID:
        path = tmp_path / image_path_from_csv(row.split(",")[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff\xe0")  # content is irrelevant to the adapter
    return tmp_path


def _vector(**positive: int) -> list[int]:
    return [positive.get(c, 0) for c in CHEXPERT_CLASSES]


def _patient2_study2(datalist: dict) -> dict | None:
    items = [i for k in ("training", "validation", "test") for i in datalist[k]]
    return next((i for i in items if i["image"] == "train/patient00002/study2/view1_frontal.jpg"), None)


@pytest.mark.parametrize(
    "policy, expected_label, expected_findings",
    [
        ("zeros", _vector(**{"Lung Opacity": 1, "Fracture": 1}), ["Lung Opacity", "Fracture"]),
        ("ones", _vector(**{"Cardiomegaly": 1, "Lung Opacity": 1, "Edema": 1, "Consolidation": 1, "Atelectasis": 1,
                            "Effusion": 1, "Fracture": 1}),
         ["Cardiomegaly", "Lung Opacity", "Edema", "Consolidation", "Atelectasis", "Effusion", "Fracture"]),
        ("ignore", _vector(**{"Cardiomegaly": -1, "Lung Opacity": 1, "Edema": -1, "Consolidation": -1,
                              "Atelectasis": -1, "Effusion": -1, "Fracture": 1}), ["Lung Opacity", "Fracture"]),
    ],
)  # fmt: skip
def test_uncertain_policies(chexpert_root: Path, policy: str, expected_label: list, expected_findings: list) -> None:
    item = _patient2_study2(build_datalist(chexpert_root, uncertain=policy))
    assert item["label"] == expected_label
    assert item["findings"] == expected_findings
    assert item["patient"] == "patient00002"


def test_drop_policy_drops_uncertain_images(chexpert_root: Path) -> None:
    datalist = build_datalist(chexpert_root, uncertain="drop")
    assert _patient2_study2(datalist) is None
    kept = [i["image"] for k in ("training", "validation") for i in datalist[k]]
    assert "train/patient00003/study1/view1_frontal.jpg" in kept
    assert "train/patient00002/study1/view1_frontal.jpg" not in kept  # Consolidation -1
    only_edema = build_datalist(chexpert_root, uncertain="drop", class_names=("Edema",))
    assert "train/patient00002/study1/view1_frontal.jpg" in [i["image"] for i in only_edema["training"] +
                                                              only_edema["validation"]]  # fmt: skip


def test_splits_frontal_and_paths(chexpert_root: Path) -> None:
    datalist = build_datalist(chexpert_root, validation_fraction=0.4, seed=1)
    assert [i["image"] for i in datalist["test"]] == ["valid/patient64541/study1/view1_frontal.jpg"]
    assert datalist["test"][0]["findings"] == ["Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity"]
    train, val = datalist["training"], datalist["validation"]
    assert len(train) + len(val) == 6 and val
    assert not {i["patient"] for i in train} & {i["patient"] for i in val}
    assert all("lateral" not in i["image"] for i in train + val)
    with_lateral = build_datalist(chexpert_root, frontal_only=False)
    assert sum(len(with_lateral[k]) for k in ("training", "validation")) == 7
    normal = next(i for i in train + val if i["patient"] == "patient00004")
    assert normal["findings"] == [] and normal["label"] == _vector()  # "No Finding" is not a class
    assert datalist["class_names"][9:11] == ["Effusion", "Pleural_Thickening"]


def test_unknown_policy_raises(chexpert_root: Path) -> None:
    with pytest.raises(ValueError, match="uncertain policy"):
        build_datalist(chexpert_root, uncertain="random")
