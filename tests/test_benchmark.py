"""Smoke test of scripts/benchmark.py: ``all --quick`` runs every section and writes its JSON (no speed checks).

The quick mode exists so that the benchmark cannot rot in CI: tiny images, one repeat, one thread. Speed is not
asserted (CI machines are shared), but every figure must be produced, positive and where the README reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECTION_FIELDS = {
    "pretrain_throughput": (
        "radlas_images_per_s",
        "vit_autoenc_recipe_images_per_s",
        "vit_autoenc_recipe_model_only_images_per_s",
        "ratio_radlas_over_recipe",
        "ratio_radlas_over_recipe_model_only",
        "radlas_gflop_per_image",
        "vit_autoenc_recipe_gflop_per_image",
        "radlas_peak_memory_mib",
        "vit_autoenc_recipe_peak_memory_mib",
    ),
    "lesion_synthesis": (
        "lesion_synthesis_lung_mask_images_per_s",
        "lesion_synthesis_images_per_s",
        "coarse_dropout_shuffle_images_per_s",
        "radlas_tiny_training_images_per_s",
        "speedup_vs_recipe_views",
        "synthesis_over_training",
        "synthesis_peak_memory_mib",
    ),
    "data_loader": (
        "cache_fill_images_per_s",
        "loader_only_images_per_s",
        "loader_images_per_s",
        "radlas_tiny_training_images_per_s",
        "loader_headroom",
        "wait_fraction",
    ),
    "localization": (
        "radlas_ms_per_image",
        "densenet121_gradcam_ms_per_image",
        "speedup",
        "radlas_peak_memory_mib",
        "densenet121_gradcam_peak_memory_mib",
    ),
}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    folder = tmp_path_factory.mktemp("benchmark")
    output = folder / "benchmark.json"
    output.write_text(json.dumps({"other_section": {"kept": True}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "all", "--quick", f"--output={output}"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text()), done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("section", sorted(SECTION_FIELDS))
def test_quick_section_results(quick_report, section):
    report, _ = quick_report
    result = report[section]
    assert result["device"] == "cpu" and result["torch_threads"] == 1
    assert result["results"], section
    for row in result["results"]:
        for name in SECTION_FIELDS[section]:
            assert row[name] is not None and row[name] >= 0, (section, name)
        assert all(value > 0 for key, value in row.items() if key.endswith("_per_s")), row


@pytest.mark.slow
def test_quick_run_shapes_and_targets(quick_report):
    report, stdout = quick_report
    assert report["other_section"] == {"kept": True}  # other sections of the file survive
    assert [(r["preset"], r["size"]) for r in report["pretrain_throughput"]["results"]] == [("tiny", 64)]
    assert [r["batch"] for r in report["localization"]["results"]] == [1, 2]
    assert {r["loader"] for r in report["data_loader"]["results"]} == {"DataLoader", "ThreadDataLoader"}
    targets = report["targets"]["results"]
    assert {t["section"] for t in targets} == set(SECTION_FIELDS)
    assert all(t["met"] == (t["ratio"] >= t["target"]) for t in targets)
    assert report["environment"]["torch"] and report["environment"]["monai"]
    for title in ("1. pretraining", "2a. lesion synthesis", "2b. pretrain bundle loader", "3. localization", "targets"):
        assert title in stdout
