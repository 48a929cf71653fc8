"""JSRT (official raw release) adapter: raw -> MONOCHROME2 16-bit PNG, nodule list parsing, datalist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radlas_monai.data.adapters.jsrt import (
    JSRT_SHAPE,
    build_datalist,
    convert_jsrt_raw,
    parse_nodule_list,
    read_jsrt_raw,
)
from radlas_monai.data.errors import EmptyFileError, TruncatedFileError

SHARED_JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"
# Tab-separated like the release; the second record ends with a bare CR, as in copies with broken line ends.
CLNDAT = (
    "JPCLN001.IMG\t5\t15\t53\tmale\t1634\t692\tmalignant\tl.upper lobe\tlung cancer\r\n"
    "JPCLN002.IMG\t5\t30\t?\tfemale\t1614\t1090\tbenign\tl.upper lobe(S5)\tpulmonary hematoma\r"
    "JPCLN003.IMG\t3\t30\t63\tfemale\t1303\t447\tmalignant\tl.upper lobe(S1+2)\tlung cancer\r\n"
)
CNNDAT = "JPCNN001.IMG  44  male  non-nodule\r\n"
LUNG = (slice(400, 1600), slice(300, 900))  # a "lung field": dark on film -> high stored values
SPINE = (slice(200, 1800), slice(980, 1070))  # "bone": bright on film -> low stored values


def _raw_film() -> np.ndarray:
    stored = np.full(JSRT_SHAPE, 3000, dtype=np.uint16)
    stored[LUNG] = 3600
    stored[SPINE] = 700
    stored[0, 0], stored[0, 1] = 4095, 0
    return stored


def _write_raw(path: Path, stored: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.astype(">u2").tofile(path)
    return path


@pytest.fixture
def jsrt_root(tmp_path: Path) -> Path:
    root = tmp_path / "jsrt"
    film = _raw_film()
    for name in ("Nodule154images/JPCLN001.IMG", "Nodule154images/JPCLN002.IMG", "NonNodule93images/JPCNN001.IMG"):
        _write_raw(root / name, film)
    (root / "Clinical_Information").mkdir()
    (root / "Clinical_Information" / "CLNDAT_EN.txt").write_bytes(CLNDAT.encode("latin-1"))
    (root / "Clinical_Information" / "CNNDAT_EN.TXT").write_bytes(CNNDAT.encode("latin-1"))
    return root


def test_convert_inverts_to_monochrome2(tmp_path: Path) -> None:
    raw = _write_raw(tmp_path / "JPCLN001.IMG", _raw_film())
    assert read_jsrt_raw(raw)[LUNG].mean() == 3600  # big-endian words read as stored
    out = convert_jsrt_raw(raw, tmp_path / "png" / "JPCLN001.png")
    png = np.asarray(Image.open(out))
    assert png.shape == JSRT_SHAPE and png.dtype == np.uint16
    assert png[LUNG].mean() < png[SPINE].mean()  # lungs dark, bone bright
    assert png[0, 0] == 0 and png[0, 1] == 65535  # stored 4095 -> black, stored 0 -> white
    assert png[LUNG][0, 0] == round((4095 - 3600) * 65535 / 4095)


@pytest.mark.parametrize("size, error, kind", [(0, EmptyFileError, "empty"), (1000, TruncatedFileError, "truncated")])
def test_read_rejects_bad_sizes(tmp_path: Path, size: int, error: type, kind: str) -> None:
    path = tmp_path / "JPCNN002.IMG"
    path.write_bytes(b"\0" * size)
    with pytest.raises(error) as info:
        read_jsrt_raw(path)
    assert info.value.kind == kind and info.value.path == str(path)


def test_parse_nodule_list(tmp_path: Path) -> None:
    path = tmp_path / "CLNDAT_EN.txt"
    path.write_bytes(CLNDAT.encode("latin-1"))
    records = parse_nodule_list(path)
    assert list(records) == ["JPCLN001", "JPCLN002", "JPCLN003"]
    assert records["JPCLN001"] == {"subtlety": 5, "size_mm": 15.0, "age": 53, "sex": "male", "x": 1634.0,
                                   "y": 692.0, "malignancy": "malignant"}  # fmt: skip
    assert records["JPCLN002"]["age"] is None and records["JPCLN002"]["size_mm"] == 30.0
    assert records["JPCLN003"]["x"] == 1303.0 and records["JPCLN003"]["subtlety"] == 3
    path.write_text("JPCLN004.IMG\t5\t15\n")
    with pytest.raises(ValueError, match="JPCLN004 has 2 fields"):
        parse_nodule_list(path)


def test_build_datalist(jsrt_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    datalist = build_datalist(jsrt_root, out, split=(1.0,))
    items = {i["patient"]: i for i in datalist["training"]}
    assert sorted(items) == ["JPCLN001", "JPCLN002", "JPCNN001"] and datalist["class_names"] == ["Nodule"]
    nodule = items["JPCLN001"]
    r = 15 / 2 / 0.175
    assert nodule["image"] == "../png/JPCLN001.png" and (out / "JPCLN001.png").is_file()
    assert nodule["findings"] == ["Nodule"] and nodule["label"] == [1] and nodule["spacing"] == [0.175, 0.175]
    assert nodule["centers"] == [[1634.0, 692.0]] and nodule["radii"] == [pytest.approx(r, abs=1e-4)]
    assert nodule["boxes"] == [pytest.approx([1634 - r, 692 - r, 1634 + r, 692 + r], abs=1e-3)]
    assert nodule["box_findings"] == ["Nodule"]
    assert items["JPCLN002"]["radii"] == [pytest.approx(30 / 0.35, abs=1e-4)]
    normal = items["JPCNN001"]
    assert normal["findings"] == [] and normal["label"] == [0] and "centers" not in normal


def test_folds(jsrt_root: Path, tmp_path: Path) -> None:
    datalist = build_datalist(jsrt_root, tmp_path / "png", fold=1, num_folds=3)
    assert len(datalist["validation"]) == 1 and len(datalist["training"]) == 2 and datalist["test"] == []
    assert datalist["validation"][0]["fold"] == 1 and {i["fold"] for i in datalist["training"]} == {0, 2}
    with pytest.raises(ValueError, match="fold must be in 0..num_folds-1"):
        build_datalist(jsrt_root, tmp_path / "png", fold=3, num_folds=3)


def test_missing_release_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CLNDAT_EN.txt"):
        build_datalist(tmp_path, tmp_path / "png")


@pytest.mark.skipif(not SHARED_JSRT.exists(), reason="the shared JSRT folder (../shared/data/jsrt_nodule) is absent")
def test_shared_jsrt_pngs_are_monochrome2() -> None:
    """The converted convention matches the project's JSRT PNGs: lung fields darker than the rest."""
    for stem in ("JPCLN001", "JPCNN001"):
        image = np.asarray(Image.open(SHARED_JSRT / "images" / f"{stem}.png"), dtype=np.float64)
        lung = np.asarray(Image.open(SHARED_JSRT / "lung_masks" / f"{stem}.png")) > 0
        assert image[lung].mean() < image[~lung].mean() - 30
