"""Smoke tests of scripts/benchmark.py: the quick sections run and write their JSON (no speed checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW_FIELDS = (
    "lesion_synthesis_images_per_s",
    "lesion_synthesis_lung_mask_images_per_s",
    "coarse_dropout_shuffle_images_per_s",
    "speedup",
    "speedup_lung_mask",
)


@pytest.mark.slow
def test_quick_lesion_synthesis_benchmark(tmp_path: Path) -> None:
    output = tmp_path / "benchmark.json"
    output.write_text(json.dumps({"other_section": {"kept": True}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "lesion_synthesis", "--quick"]
    done = subprocess.run(
        [*command, f"--output={output}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "coarse_dropout_shuffle_images_per_s" in done.stdout  # the table
    report = json.loads(output.read_text())
    assert report["other_section"] == {"kept": True}
    section = report["lesion_synthesis"]
    assert section["batch_size"] > 0 and section["repeats"] > 0 and section["device"] == "cpu"
    assert [row["size"] for row in section["results"]] == [64]
    for row in section["results"]:
        for name in ROW_FIELDS:
            assert row[name] > 0, name
    assert report["environment"]["torch"] and report["environment"]["monai"]


@pytest.mark.slow
def test_quick_pretrain_throughput_benchmark(tmp_path: Path) -> None:
    output = tmp_path / "benchmark.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "pretrain_throughput", "--quick"]
    done = subprocess.run(
        [*command, f"--output={output}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio_radlas_over_recipe" in done.stdout
    (row,) = json.loads(output.read_text())["pretrain_throughput"]["results"]
    assert row["preset"] == "tiny" and row["size"] == 64
    for name in ("radlas_images_per_s", "vit_autoenc_recipe_images_per_s", "ratio_radlas_over_recipe"):
        assert row[name] > 0, name
