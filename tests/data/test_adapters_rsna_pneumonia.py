"""RSNA Pneumonia adapter on a tiny fixture in the real Kaggle layout (stage 2 tables, one row per box)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radlas_monai.data.adapters.rsna_pneumonia import build_datalist
from radlas_monai.data.writers import write_dicom

IDS = [
    "0004cfab-14fd-4e49-80ba-63a80b6bddd6",
    "00313ee0-9eaa-42f4-b0ab-c148ed3241cd",
    "00322d4d-1c29-4943-afc9-b6754be640eb",
    "00436515-870c-4b36-a041-de91049b9ab4",
    "00569f44-917d-4c86-a842-81832af98c30",
    "00704310-78a8-4b38-8475-49f4573b2dbb",
]
LABELS = f"""patientId,x,y,width,height,Target
{IDS[0]},,,,,0
{IDS[1]},,,,,0
{IDS[2]},,,,,0
{IDS[3]},264.0,152.0,213.0,379.0,1
{IDS[3]},562.0,152.0,256.0,453.0,1
{IDS[4]},,,,,0
{IDS[5]},323.0,577.0,160.0,104.0,1
"""
CLASSES = f"""patientId,class
{IDS[0]},No Lung Opacity / Not Normal
{IDS[1]},No Lung Opacity / Not Normal
{IDS[2]},No Lung Opacity / Not Normal
{IDS[3]},Lung Opacity
{IDS[3]},Lung Opacity
{IDS[4]},Normal
{IDS[5]},Lung Opacity
"""


@pytest.fixture
def rsna_root(tmp_path: Path) -> Path:
    (tmp_path / "stage_2_train_labels.csv").write_text(LABELS)
    (tmp_path / "stage_2_detailed_class_info.csv").write_text(CLASSES)
    for patient in IDS:
        write_dicom(np.zeros((8, 8), np.uint16), tmp_path / "stage_2_train_images" / f"{patient}.dcm", modality="CR")
    return tmp_path


def _items(datalist: dict) -> dict[str, dict]:
    return {i["patient"]: i for k in ("training", "validation", "test") for i in datalist[k]}


def test_boxes_and_labels(rsna_root: Path) -> None:
    datalist = build_datalist(rsna_root, split=(0.5, 0.5, 0.0))
    assert datalist["class_names"] == ["Pneumonia"]
    items = _items(datalist)
    assert len(items) == 6 and sorted(len(datalist[k]) for k in ("training", "validation")) == [3, 3]
    two = items[IDS[3]]
    assert two["image"] == f"stage_2_train_images/{IDS[3]}.dcm"
    assert two["boxes"] == [[264.0, 152.0, 477.0, 531.0], [562.0, 152.0, 818.0, 605.0]]
    assert (
        two["box_findings"] == ["Pneumonia", "Pneumonia"] and two["label"] == [1] and two["findings"] == ["Pneumonia"]
    )
    normal = items[IDS[4]]
    assert normal["label"] == [0] and normal["findings"] == [] and "boxes" not in normal


def test_exclude_not_normal(rsna_root: Path) -> None:
    items = _items(build_datalist(rsna_root, exclude_not_normal=True))
    assert set(items) == {IDS[3], IDS[4], IDS[5]}


def test_missing_image_and_blank_box(rsna_root: Path) -> None:
    (rsna_root / "stage_2_train_images" / f"{IDS[0]}.dcm").unlink()
    assert IDS[0] not in _items(build_datalist(rsna_root))
    (rsna_root / "stage_2_train_labels.csv").write_text(LABELS.replace("323.0,577.0,160.0,104.0,1", ",,,,1"))
    with pytest.raises(ValueError, match=f"{IDS[5]} has Target 1 but a blank box"):
        build_datalist(rsna_root)
