"""Smoke tests of scripts/compare_localization.py and scripts/compare_classification.py (``--quick``, tiny images).

Both scripts run in-process on the embedded synthetic radiographs at 32 px with one epoch per training; the
classification run must reuse the localization run's cached pretrainings.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    common = {"dataset": "synthetic", "quick": True, "image_size": 32, "work_dir": str(work), "bootstrap": 5}
    loc_dir, cls_dir = tmp_path_factory.mktemp("loc"), tmp_path_factory.mktemp("cls")
    localization = _script("compare_localization").main(output_dir=str(loc_dir), **common)
    classification = _script("compare_classification").main(
        output_dir=str(cls_dir), probe_steps=20, label_fractions=[0.5, 1.0], **common
    )
    return localization, classification, loc_dir, cls_dir


def test_localization_table(runs):
    report, _, out, _ = runs
    names = [
        "radlas",
        "reconstruction_only",
        "radlas_previous_recipe",
        "vit_autoenc_residual",
        "normal_ae_residual",
        "densenet121_gradcam",
        "log_blob",
        "random_lung_point",
    ]
    assert list(report["results"]) == names
    table = (out / "comparison.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "pointing_game" not in line]
    assert [row.split("|")[1].strip() for row in rows[: len(names)]] == names
    assert "pointing_game" in table and "image_auroc" in table
    for name in names:
        assert 0.0 <= report["results"][name]["pixel_auroc"] <= 1.0
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["budget"]["image_size"] == 32 and saved["n_eval_images"] == report["n_eval_images"] > 0
    trained = {entry["model"]: entry for entry in saved["trained"]}
    expected = {"radlas", "reconstruction_only", "radlas_previous_recipe", "vit_autoenc", "normal_autoencoder"}
    assert set(trained) == expected | {"densenet121"}
    assert "normal training images" in trained["normal_autoencoder"]["trained_on"]
    assert (out / "metrics.json").is_file()


def test_classification_table(runs):
    _, report, _, out = runs
    assert len(report["rows"]) == 4 * 2 * 2  # encoders x modes x label fractions
    assert {r["encoder"] for r in report["rows"]} == {"radlas", "reconstruction_only", "vit_autoenc", "random"}
    for row in report["rows"]:
        assert row["mode"] in ("linear_probe", "finetune") and row["fraction"] in (0.5, 1.0)
        assert 0.0 <= row["auroc"] <= 1.0
    small = {r["n_labelled"] for r in report["rows"] if r["fraction"] == 0.5}
    full = {r["n_labelled"] for r in report["rows"] if r["fraction"] == 1.0}
    assert max(small) < min(full) == report["n_train_images"]
    lines = (out / "comparison.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| encoder"))
    assert header.count("|") == 6 and "linear_probe 50% labels" in header
    assert report["encoders"]["random"].startswith("random")


def test_classification_reuses_the_cached_pretrainings(runs):
    localization, classification, _, _ = runs
    trained = {entry["model"]: entry for entry in localization["trained"]}
    assert classification["encoders"]["radlas"] == trained["radlas"]["checkpoint"]
    assert classification["encoders"]["reconstruction_only"] == trained["reconstruction_only"]["checkpoint"]
    assert Path(classification["encoders"]["vit_autoenc"]).name == "encoder.pt"
    assert classification["pretrain_budget"] == localization["budget"]


def test_localization_method_subset_trains_only_what_it_needs(tmp_path):
    report = _script("compare_localization").main(
        dataset="synthetic",
        quick=True,
        image_size=32,
        work_dir=str(tmp_path / "work"),
        bootstrap=5,
        output_dir=str(tmp_path / "out"),
        methods=["radlas", "log_blob"],
    )
    assert list(report["results"]) == ["radlas", "log_blob"]
    assert [entry["model"] for entry in report["trained"]] == ["radlas"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["radlas"]
    with pytest.raises(ValueError, match="unknown methods"):
        _script("compare_localization").main(quick=True, output_dir=str(tmp_path), methods=["oracle"])


def test_localization_pool_and_loss_reach_the_radlas_training(tmp_path):
    script = _script("compare_localization")
    common = {"dataset": "synthetic", "quick": True, "image_size": 32, "bootstrap": 5, "methods": ["radlas"]}
    loss = {"bce_weight": 10.0, "focal_gamma": 2.0, "dice_mode": "lesion", "outside_weight": 5.0}
    report = script.main(
        work_dir=str(tmp_path / "w"), output_dir=str(tmp_path / "o"), pool="normal", loss=loss, **common
    )
    settings = json.loads((tmp_path / "w" / "radlas" / "settings.json").read_text())["settings"]
    assert report["radlas_pool"] == "normal" and report["radlas_loss"] == loss and settings["loss"] == loss
    assert "normal training images" in report["trained"][0]["trained_on"]
    data = script.pv.prepare_experiment_data("synthetic", 32, quick=True, synthetic_images=24)
    n_normal = int((data.train_labels.sum(dim=1) == 0).sum())
    assert 0 < n_normal < len(data.train_items) and settings["num_images"] == n_normal
    with pytest.raises(ValueError, match="pool"):
        script.main(work_dir=str(tmp_path / "w"), output_dir=str(tmp_path / "o"), pool="sick", **common)
    with pytest.raises(ValueError, match="JSRT"):
        script.main(work_dir=str(tmp_path / "w"), output_dir=str(tmp_path / "o"), validation=True, **common)


def test_unknown_protocol_raises(tmp_path):
    with pytest.raises(ValueError, match="protocol"):
        _script("compare_classification").main(quick=True, output_dir=str(tmp_path), protocol="knn")
