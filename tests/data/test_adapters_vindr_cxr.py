"""VinDr-CXR adapter on tiny fixtures in the PhysioNet and Kaggle layouts (several readers per image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radlas_monai.data.adapters.vindr_cxr import VINDR_CLASSES, build_datalist, consensus_boxes

LABELS = [
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
    "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
    "Mediastinal shift", "Nodule/Mass", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD", "Lung tumor", "Pneumonia", "Tuberculosis",
    "Other diseases", "No finding",
]  # fmt: skip
A = "9a5094b2563a1ef3ff50dc5c7ff71345"  # VinDr image ids are 32 hex digits
B = "051132a778e61a86eb147c7c6f564dfe"
C = "1c32170b4af4ce1a3030eb8167753b06"
D = "d3637a1935a905b3c326af31389cb846"
BOXES_TRAIN = [  # image_id, rad_id, class_name, x_min, y_min, x_max, y_max
    (A, "R1", "Nodule/Mass", 100, 100, 150, 150),
    (A, "R2", "Nodule/Mass", 105, 102, 152, 149),
    (A, "R1", "Aortic enlargement", 500, 300, 560, 360),
    (A, "R3", "Lung cavity", 10, 10, 20, 20),
    (B, "R4", "No finding", None, None, None, None),
    (B, "R5", "No finding", None, None, None, None),
    (B, "R6", "No finding", None, None, None, None),
    (C, "R1", "Pleural effusion", 800, 900, 1000, 1100),
    (C, "R2", "Pleural effusion", 810, 905, 1010, 1090),
    (C, "R3", "Pleural effusion", 100, 900, 300, 1100),  # the other side: a single reader
]
IMAGE_LABELS_TRAIN = {  # (image, reader) -> positive labels
    (A, "R1"): ["Aortic enlargement", "Nodule/Mass", "Pneumonia"],
    (A, "R2"): ["Nodule/Mass", "Pneumonia"],
    (A, "R3"): ["Lung cavity", "Tuberculosis"],
    (B, "R4"): ["No finding"], (B, "R5"): ["No finding"], (B, "R6"): ["No finding"],
    (C, "R1"): ["Pleural effusion"], (C, "R2"): ["Pleural effusion"], (C, "R3"): ["Pleural effusion"],
}  # fmt: skip


def _cell(value: float | None) -> str:
    return "" if value is None else str(value)


def _write_boxes(path: Path, rows: list[tuple], kaggle: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kaggle:
        lines = ["image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max"]
        lines += [f"{i},{c},{LABELS.index(c)},{r},{','.join(_cell(v) for v in box)}" for i, r, c, *box in rows]
    else:
        lines = ["image_id,rad_id,class_name,x_min,y_min,x_max,y_max"]
        lines += [f"{i},{r},{c},{','.join(_cell(v) for v in box)}" for i, r, c, *box in rows]
    path.write_text("\n".join(lines) + "\n")


def _write_dicoms(root: Path, folder: str, ids: list[str]) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        (root / folder / f"{image_id}.dicom").write_bytes(b"\0" * 128 + b"DICM")


@pytest.fixture
def physionet_root(tmp_path: Path) -> Path:
    notes = tmp_path / "annotations"
    _write_boxes(notes / "annotations_train.csv", BOXES_TRAIN)
    lines = ["image_id,rad_ID," + ",".join(LABELS)]
    lines += [f"{i},{r}," + ",".join(str(int(n in pos)) for n in LABELS) for (i, r), pos in IMAGE_LABELS_TRAIN.items()]
    (notes / "image_labels_train.csv").write_text("\n".join(lines) + "\n")
    test_boxes = "image_id,class_name,x_min,y_min,x_max,y_max\n" + f"{D},Nodule/Mass,10.5,20.25,30.5,40.75\n"
    (notes / "annotations_test.csv").write_text(test_boxes)  # the test consensus: one reader column-free table
    test_labels = [n if n != "Other diseases" else "Other disease" for n in LABELS]
    positives = {"Nodule/Mass", "Lung tumor"}
    (notes / "image_labels_test.csv").write_text(
        "image_id," + ",".join(test_labels) + "\n" + f"{D}," + ",".join(str(int(n in positives)) for n in LABELS) + "\n"
    )
    _write_dicoms(tmp_path, "train", [A, B, C])
    _write_dicoms(tmp_path, "test", [D])
    return tmp_path


def _by_id(datalist: dict) -> dict[str, dict]:
    return {Path(i["image"]).stem: i for k in ("training", "validation", "test") for i in datalist[k]}


def test_union_policy(physionet_root: Path) -> None:
    datalist = build_datalist(physionet_root, box_policy="union")
    assert datalist["class_names"] == list(VINDR_CLASSES)
    items = _by_id(datalist)
    assert items[A]["image"] == f"train/{A}.dicom" and items[A]["patient"] == A
    assert items[A]["findings"] == ["Aortic Enlargement", "Nodule", "Pneumonia"]  # cavity, TB: no vocabulary entry
    assert items[A]["boxes"] == [[100, 100, 150, 150], [105, 102, 152, 149], [500, 300, 560, 360]]
    assert items[A]["box_findings"] == ["Nodule", "Nodule", "Aortic Enlargement"]
    assert items[A]["label"] == [int(c in ("Aortic Enlargement", "Nodule")) for c in VINDR_CLASSES]
    assert items[B]["findings"] == [] and "boxes" not in items[B] and sum(items[B]["label"]) == 0
    assert len(items[C]["boxes"]) == 3


def test_consensus_policy(physionet_root: Path) -> None:
    items = _by_id(build_datalist(physionet_root, box_policy="consensus", min_readers=2))
    assert items[A]["findings"] == ["Nodule", "Pneumonia"]  # aortic enlargement: one reader only
    assert items[A]["boxes"] == [[102.5, 101.0, 151.0, 149.5]] and items[A]["box_findings"] == ["Nodule"]
    assert items[C]["findings"] == ["Effusion"]
    assert items[C]["boxes"] == [[805.0, 902.5, 1005.0, 1095.0]]  # the single-reader box is not kept
    three = _by_id(build_datalist(physionet_root, box_policy="consensus", min_readers=3))
    assert three[A]["findings"] == [] and three[C]["findings"] == ["Effusion"] and "boxes" not in three[C]


def test_official_test_set_is_used_as_is(physionet_root: Path) -> None:
    datalist = build_datalist(physionet_root, box_policy="consensus", nodule_mass_as="Mass")
    (item,) = datalist["test"]
    assert item["image"] == f"test/{D}.dicom"
    assert item["findings"] == ["Mass"] and item["boxes"] == [[10.5, 20.25, 30.5, 40.75]]
    assert len(datalist["training"]) + len(datalist["validation"]) == 3


def test_missing_images_are_left_out(physionet_root: Path) -> None:
    (physionet_root / "train" / f"{B}.dicom").unlink()
    datalist = build_datalist(physionet_root, validation_fraction=0.5)
    assert B not in _by_id(datalist) and {A, C} <= set(_by_id(datalist))
    assert len(datalist["training"]) == len(datalist["validation"]) == 1


def test_kaggle_layout(tmp_path: Path) -> None:
    _write_boxes(tmp_path / "train.csv", BOXES_TRAIN, kaggle=True)
    _write_dicoms(tmp_path, "train", [A, B, C])
    datalist = build_datalist(tmp_path, box_policy="consensus")
    assert datalist["test"] == []
    items = _by_id(datalist)
    assert items[A]["findings"] == ["Nodule"]  # no image-label table: findings come from the boxes
    assert items[C]["boxes"] == [[805.0, 902.5, 1005.0, 1095.0]]


@pytest.mark.parametrize(
    "boxes, expected",
    [
        ([("R1", [0, 0, 10, 10]), ("R2", [1, 1, 11, 11]), ("R3", [50, 50, 60, 60])], [[0.5, 0.5, 10.5, 10.5]]),
        ([("R1", [0, 0, 10, 10]), ("R1", [1, 1, 11, 11])], []),  # one reader twice is not a consensus
        ([("R1", [0, 0, 10, 10]), ("R2", [8, 8, 18, 18])], []),  # IoU 4/196 < 0.4
    ],
)
def test_consensus_boxes(boxes: list, expected: list) -> None:
    assert consensus_boxes(boxes, min_readers=2, iou_threshold=0.4) == expected


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="box_policy"):
        build_datalist(tmp_path, box_policy="majority")
    with pytest.raises(FileNotFoundError, match="annotations_train.csv"):
        build_datalist(tmp_path)
