"""Which radiographs a bundle reads: datalist > folder > embedded synthetic data, with skip reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radlas_monai.data.writers import write_dicom, write_png
from radlas_monai.engines.data import inference_items, is_normal, load_screened_split, resolve_datalist


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "radiographs"
    rng = np.random.default_rng(0)
    for i in range(6):
        write_png((rng.random((40, 48)) * 255).astype(np.uint8), root / f"p{i}" / "frontal.png")
    write_dicom((rng.random((32, 32)) * 4000).astype(np.uint16), root / "p9" / "IM0001", spacing=(0.2, 0.2))
    (root / "p7").mkdir()
    (root / "p7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    return root


def test_folder_becomes_a_datalist_with_absolute_paths(folder, tmp_path):
    path = resolve_datalist(folder, None, tmp_path / "out", seed=1)
    datalist = json.loads(open(path).read())
    items = datalist["training"] + datalist["validation"]
    assert len(items) == 8 and all(item["image"].startswith("/") for item in items)
    assert any(item["image"].endswith("IM0001") for item in items)


def test_screening_skips_and_reports_bad_files(folder, tmp_path):
    out = tmp_path / "out"
    path = resolve_datalist(folder, None, out, seed=1, val_fraction=0.0001)
    good = load_screened_split(path, "training", out)
    report = json.loads((out / "skipped_training.json").read_text())
    assert len(good) + len(report["skipped"]) == report["checked"]
    assert [s["path"].endswith("broken.png") for s in report["skipped"]] == [True]
    with pytest.raises(Exception, match="broken.png"):
        load_screened_split(path, "training", out, strict=True)


def test_datalist_wins_and_missing_inputs_are_named(folder, tmp_path):
    datalist = tmp_path / "mine.json"
    datalist.write_text(json.dumps({"training": [{"image": str(next(folder.rglob("*.png")))}]}))
    assert resolve_datalist(folder, datalist, tmp_path) == str(datalist)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        resolve_datalist(None, tmp_path / "nope.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        resolve_datalist(tmp_path / "missing_dir", None, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no DICOM, PNG, JPEG or NIfTI"):
        resolve_datalist(empty, None, tmp_path)


def test_inference_items_read_every_good_file_in_a_folder(folder, tmp_path):
    items = inference_items(folder, None, tmp_path / "out")
    assert len(items) == 7 and set(items[0]) == {"image"}


def test_synthetic_default(tmp_path, monkeypatch):
    monkeypatch.setenv("RADLAS_DATA_DIR", str(tmp_path / "cache"))
    path = resolve_datalist(None, None, tmp_path, synthetic_images=6, image_size=64)
    assert str(tmp_path / "cache") in path
    assert load_screened_split(path, "training", tmp_path, keys=("image", "lung_mask"))


def test_normal_pool_keeps_only_items_marked_normal(folder, tmp_path):
    images = sorted(str(p) for p in folder.rglob("frontal.png"))
    items = [
        {"image": images[0], "label": [0, 0]},  # labelled, no finding: normal
        {"image": images[1], "label": [0, 1]},  # a finding
        {"image": images[2]},  # unlabelled: not known to be normal
        {"image": images[3], "normal": True, "label": [1, 0]},  # an explicit flag wins over the label
        {"image": images[4], "normal": False},
    ]
    datalist = tmp_path / "pool.json"
    datalist.write_text(json.dumps({"training": items}))
    assert [is_normal(item) for item in items] == [True, False, False, True, False]
    assert len(load_screened_split(datalist, "training", tmp_path)) == 5
    kept = load_screened_split(datalist, "training", tmp_path, pool="normal")
    assert [item["image"] for item in kept] == [images[0], images[3]]
    datalist.write_text(json.dumps({"training": [items[1], items[2]]}))
    with pytest.raises(ValueError, match="none of the 2 'training' items.*marked normal"):
        load_screened_split(datalist, "training", tmp_path, pool="normal")
    with pytest.raises(ValueError, match="pool must be"):
        load_screened_split(datalist, "training", tmp_path, pool="healthy")
