"""Markdown tables, flat scalars and FROC plots of localization results (radlas_monai.metrics.report)."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from radlas_monai.metrics.report import markdown_table, plot_froc, scalar_metrics, write_markdown_table


def _results(pointing: float, sens: float) -> dict:
    curve = {"fps": [0.0, 0.5, 2.0], "sensitivity": [0.0, sens / 2, sens]}
    return {
        "pointing_game": pointing,
        "cnr": math.nan,
        "n_images": 10.0,
        "froc_curve": curve,
        "ci": {"pointing_game": [pointing - 0.1, pointing + 0.1]},
        "per_class": {"Nodule": {"pointing_game": 1.0, "n_images": 4.0, "froc_curve": curve, "ci": {}}},
    }


def test_markdown_table_side_by_side():
    table = markdown_table(
        {"radlas": _results(0.5, 0.8), "gradcam": _results(0.25, 0.4)}, keys=("pointing_game", "cnr", "n_images")
    )
    lines = table.strip().splitlines()
    assert lines[0] == "| metric | radlas | gradcam |"
    assert lines[2] == "| pointing_game | 0.500 [0.400, 0.600] | 0.250 [0.150, 0.350] |"
    assert lines[3] == "| cnr | n/a | n/a |" and lines[4] == "| n_images | 10 | 10 |"
    per_class = markdown_table(_results(0.5, 0.8), keys=("pointing_game",), finding="Nodule")
    assert "| pointing_game | 1.000 |" in per_class and "| metric | method |" in per_class


def test_write_markdown_table_has_a_section_per_finding(tmp_path):
    path = write_markdown_table({"a": _results(0.5, 0.8)}, tmp_path / "out" / "metrics.md", keys=("pointing_game",))
    text = path.read_text()
    assert text.startswith("# Localization metrics") and "## Nodule" in text and text.count("| pointing_game |") == 2


def test_scalar_metrics_flatten():
    flat = scalar_metrics(_results(0.5, 0.8), include_ci=True)
    assert flat["pointing_game"] == 0.5 and flat["Nodule/pointing_game"] == 1.0
    assert flat["pointing_game_ci_low"] == pytest.approx(0.4) and "froc_curve" not in flat
    assert all(isinstance(v, float) for v in flat.values())


@pytest.mark.parametrize("finding", [None, "Nodule"])
def test_plot_froc_writes_a_png(tmp_path, finding):
    path = plot_froc(
        {"radlas": _results(0.5, 0.8), "gradcam": _results(0.2, 0.4)}, tmp_path / "froc.png", finding=finding
    )
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (660, 480)


def test_plot_froc_needs_curves(tmp_path):
    with pytest.raises(ValueError, match="'m' has no 'froc_curve'"):
        plot_froc({"m": {"pointing_game": 0.5}}, tmp_path / "x.png")
