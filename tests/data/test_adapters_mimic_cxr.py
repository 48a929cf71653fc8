"""MIMIC-CXR-JPG adapter on a tiny fixture in the real layout (gzip tables, files/p1X/p1XXXXXXX/sYYYYYYYY/)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from radlas_monai.data.adapters.chexpert import CHEXPERT_CLASSES
from radlas_monai.data.adapters.mimic_cxr import build_datalist, image_path

LABEL_HEADER = (
    "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,"
    "Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices"
)
#            At   Cm  Co  Ed  EC  Fr  LL  LO  NF  PE  PO  Pn  Px  SD
CHEXPERT = [
    "10000032,50414267,,,,,,,,,1.0,,,,,",
    "10000032,53189527,,,,,,,,,1.0,,,,,",
    "10000764,57375967,,,1.0,,,,,,,,,-1.0,,",
    "10000898,50771383,-1.0,1.0,,,,,,,,1.0,,,,",
    "11000011,51234567,,,,,,,,,,,,,1.0,",
    # 12000000/59999999 has no label row (a study without findings / impression)
]
NEGBIO = [
    "10000032,50414267,,,,,,,,,1.0,,,,,",
    "10000032,53189527,,,,,,,,,1.0,,,,,",
    "10000764,57375967,,,,,,,,,1.0,,,,,",
    "10000898,50771383,,1.0,,,,,,,,,,,,",
    "11000011,51234567,,,,,,,,,1.0,,,,,",
]
SPLIT = [  # dicom_id, study_id, subject_id, split, ViewPosition
    ("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "50414267", "10000032", "train", "PA"),
    ("174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "50414267", "10000032", "train", "LATERAL"),
    ("2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab", "53189527", "10000032", "train", "AP"),
    ("d0b71acc-b5a62046-bbb5f6b8-7b173b85-65cdf738", "57375967", "10000764", "validate", "AP"),
    ("1a1fe7e3-cbac5d93-b339aeda-86bb86b5-4f31e82e", "50771383", "10000898", "test", "PA"),
    ("aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "51234567", "11000011", "train", "PA"),
    ("ffffffff-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "59999999", "12000000", "train", "PA"),
]


def _write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.fixture
def mimic_root(tmp_path: Path) -> Path:
    _write_gz(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz", [LABEL_HEADER, *CHEXPERT])
    _write_gz(tmp_path / "mimic-cxr-2.0.0-negbio.csv.gz", [LABEL_HEADER, *NEGBIO])
    _write_gz(tmp_path / "mimic-cxr-2.0.0-split.csv.gz",
              ["dicom_id,study_id,subject_id,split", *(",".join(r[:4]) for r in SPLIT)])  # fmt: skip
    meta_header = ("dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,"
                   "StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
                   "PatientOrientationCodeSequence_CodeMeaning")  # fmt: skip
    meta = [f"{d},{sub},{st},CHEST (PA AND LAT),{view},3056,2544,21800506,213014.531,CHEST (PA AND LAT),"
            "postero-anterior,Erect" for d, st, sub, _, view in SPLIT]  # fmt: skip
    (tmp_path / "mimic-cxr-2.0.0-metadata.csv").write_text("\n".join([meta_header, *meta]) + "\n")  # uncompressed
    for dicom, study, subject, _, _ in SPLIT:
        if subject == "11000011":
            continue  # not downloaded
        path = tmp_path / image_path(subject, study, dicom)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff\xe0")
    return tmp_path


def test_image_path_layout() -> None:
    assert image_path("10000032", "50414267", "02aa") == "files/p10/p10000032/s50414267/02aa.jpg"


def test_official_split_views_and_labels(mimic_root: Path) -> None:
    datalist = build_datalist(mimic_root)
    train, val, test = datalist["training"], datalist["validation"], datalist["test"]
    assert [i["image"] for i in train] == [
        "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg",
        "files/p10/p10000032/s53189527/2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab.jpg",
    ]  # lateral view, the study without labels and the missing file are left out
    assert train[0]["patient"] == "p10000032" and train[0]["findings"] == [] and sum(train[0]["label"]) == 0
    assert val[0]["findings"] == ["Consolidation"] and val[0]["patient"] == "p10000764"
    assert test[0]["findings"] == ["Cardiomegaly", "Effusion"]
    assert test[0]["label"] == [int(c in ("Cardiomegaly", "Effusion")) for c in CHEXPERT_CLASSES]


@pytest.mark.parametrize("policy, pneumonia, present", [("zeros", 0, True), ("ones", 1, True), ("ignore", -1, True),
                                                        ("drop", None, False)])  # fmt: skip
def test_uncertain_policy(mimic_root: Path, policy: str, pneumonia: int | None, present: bool) -> None:
    validation = build_datalist(mimic_root, uncertain=policy)["validation"]
    assert bool(validation) == present
    if present:
        assert validation[0]["label"][CHEXPERT_CLASSES.index("Pneumonia")] == pneumonia


def test_all_views_and_negbio(mimic_root: Path) -> None:
    datalist = build_datalist(mimic_root, frontal_only=False, label_source="negbio")
    assert len(datalist["training"]) == 3
    assert datalist["validation"][0]["findings"] == []  # NegBio row of that study says No Finding
    with pytest.raises(ValueError, match="label_source"):
        build_datalist(mimic_root, label_source="radiologist")
