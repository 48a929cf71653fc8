"""generate_dataset / ensure_synthetic_dataset: files, datalist contract, splits, formats, idempotence, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from PIL import Image

from radlas_monai.data.loader import LoadRadiograph
from radlas_monai.data.synthetic import dataset as dataset_module
from radlas_monai.data.synthetic.dataset import (
    default_dataset_dir,
    ensure_synthetic_dataset,
    generate_dataset,
    image_seed,
)
from radlas_monai.data.synthetic.generator import render_radiograph
from radlas_monai.data.vocabulary import SYNTHETIC_FINDINGS

SPLITS = ("training", "validation", "test")


def _all_items(datalist_path: Path) -> list[dict]:
    data = json.loads(datalist_path.read_text())
    return [item for split in SPLITS for item in data.get(split, [])]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("syn"), num_images=20, image_size=96, seed=3)


def test_datalist_follows_the_contract_and_monai_reads_it(dataset):
    data = json.loads(dataset.read_text())
    assert data["class_names"] == list(SYNTHETIC_FINDINGS)
    assert {"name", "description"} <= set(data)
    for split in SPLITS:
        items = load_decathlon_datalist(dataset, data_list_key=split, base_dir=dataset.parent)
        assert items, split
        for item in items:
            for key in ("image", "mask", "lung_mask"):
                assert Path(item[key]).is_file(), item[key]
            assert len(item["label"]) == len(SYNTHETIC_FINDINGS)
            count = len(item["boxes"])
            assert len(item["box_findings"]) == len(item["centers"]) == len(item["radii"]) == count
            assert item["findings"] == [n for n in SYNTHETIC_FINDINGS if n in item["box_findings"]]
            assert item["label"] == [int(n in item["findings"]) for n in SYNTHETIC_FINDINGS]
            assert item["spacing"] == pytest.approx([350 / 96] * 2)


def test_files_match_the_rendered_sample(dataset):
    item = next(i for i in _all_items(dataset) if i["boxes"])
    root = dataset.parent
    sample = render_radiograph(item["seed"], 96)
    png = np.asarray(Image.open(root / item["image"]))
    np.testing.assert_array_equal(png, np.rint(sample.image * 255).astype(np.uint8))
    lesion = np.asarray(Image.open(root / item["mask"]))
    assert set(np.unique(lesion)) == {0, 255}
    for box in item["boxes"]:  # every box lies on lesion pixels
        x0, y0, x1, y1 = box
        assert lesion[y0:y1, x0:x1].any()
    lung = np.asarray(Image.open(root / item["lung_mask"])) > 0
    np.testing.assert_array_equal(lung, sample.lung_mask > 0)


def test_split_by_patient_without_overlap(dataset):
    data = json.loads(dataset.read_text())
    patients = {split: {item["patient"] for item in data[split]} for split in SPLITS}
    assert patients["training"].isdisjoint(patients["validation"])
    assert patients["training"].isdisjoint(patients["test"])
    assert patients["validation"].isdisjoint(patients["test"])
    assert sum(len(p) for p in patients.values()) == 20
    assert len(patients["training"]) == 14 and len(patients["validation"]) == 3
    assert all(p.startswith("SYN-") and len(p) == 10 for s in patients.values() for p in s)


def test_rerun_is_idempotent_and_removes_stale_files(tmp_path):
    first = generate_dataset(tmp_path, num_images=6, image_size=64, seed=1)
    snapshot = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "images" / "SYN-000099.png").write_bytes(b"stale")
    (tmp_path / "images" / "notes.txt").write_text("not ours")
    second = generate_dataset(tmp_path, num_images=6, image_size=64, seed=1)
    assert first == second
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after.pop(Path("images/notes.txt")) == b"not ours"
    assert after == snapshot


def test_interrupted_run_leaves_no_datalist(tmp_path):
    generate_dataset(tmp_path, num_images=3, image_size=64)

    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path, num_images=3, image_size=64, seed=5, progress=interrupt)
    assert not (tmp_path / "datalist.json").exists()
    assert not list(tmp_path.rglob(".tmp-*"))


def test_dicom_and_nifti_read_back_with_the_same_geometry_and_intensities(tmp_path):
    path = generate_dataset(tmp_path, num_images=8, image_size=80, seed=2, formats=("png", "dicom", "nifti"))
    items = _all_items(path)
    suffixes = sorted(Path(i["image"]).name.split(".", 1)[1] for i in items)
    assert suffixes.count("dcm") == 3 and suffixes.count("nii.gz") == 1 and suffixes.count("png") == 4
    loader = LoadRadiograph()
    photometric = []
    for item in items:
        image = loader(str(tmp_path / item["image"]))
        assert tuple(image.shape) == (1, 80, 80)
        expected = render_radiograph(item["seed"], 80).image
        np.testing.assert_allclose(image[0].numpy(), expected, atol=0.5 / 255 + 1e-6)
        if item["image"].endswith(".dcm"):
            assert image.meta["spacing"] == pytest.approx(item["spacing"])
            photometric.append(image.meta["photometric_interpretation"])
    assert sorted(photometric) == ["MONOCHROME1", "MONOCHROME2", "MONOCHROME2"]


def test_only_dicom(tmp_path):
    path = generate_dataset(tmp_path, num_images=3, image_size=64, formats=["dicom"], split=(1.0, 0.0, 0.0))
    data = json.loads(path.read_text())
    assert all(i["image"].endswith(".dcm") for i in data["training"]) and len(data["training"]) == 3
    assert data["validation"] == [] and data["test"] == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_images": 0}, "num_images"),
        ({"formats": ("png", "jpeg")}, "formats"),
        ({"formats": ()}, "formats"),
        ({"split": (0.5, 0.2, 0.2)}, "split"),
        ({"split": (0.7, 0.3)}, "split"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(tmp_path, **{"num_images": 2, "image_size": 64, **kwargs})
    assert not (tmp_path / "datalist.json").exists()


def test_image_seeds_are_distinct_and_stable():
    seeds = {image_seed(0, i) for i in range(1000)} | {image_seed(1, i) for i in range(1000)}
    assert len(seeds) == 2000
    assert image_seed(0, 5) == image_seed(0, 5)


def test_default_dataset_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RADLAS_DATA_DIR", str(tmp_path / "data"))
    assert default_dataset_dir() == tmp_path / "data"
    monkeypatch.delenv("RADLAS_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_dataset_dir() == tmp_path / "cache" / "radlas_monai" / "synthetic"


def test_ensure_generates_once_then_reuses(monkeypatch, tmp_path):
    monkeypatch.setenv("RADLAS_DATA_DIR", str(tmp_path))
    calls = []
    real = dataset_module.generate_dataset

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "generate_dataset", counting)
    first = ensure_synthetic_dataset(num_images=4, image_size=64, seed=2)
    assert first == tmp_path / "n4_s64_seed2" / "datalist.json" and first.is_file()
    assert ensure_synthetic_dataset(num_images=4, image_size=64, seed=2) == first
    assert len(calls) == 1
    other = ensure_synthetic_dataset(num_images=4, image_size=64, seed=3)  # other arguments, other folder
    assert other.parent.name == "n4_s64_seed3" and len(calls) == 2
    next(iter((first.parent / "images").iterdir())).unlink()  # a missing file triggers regeneration
    assert ensure_synthetic_dataset(num_images=4, image_size=64, seed=2) == first
    assert len(calls) == 3 and not (first.parent / ".generating.lock").exists()


def test_ensure_times_out_on_a_held_lock(tmp_path):
    folder = tmp_path / "n2_s64_seed0"
    folder.mkdir()
    (folder / ".generating.lock").touch()
    with pytest.raises(TimeoutError, match="generating.lock"):
        ensure_synthetic_dataset(tmp_path, num_images=2, image_size=64, timeout=0.0)
