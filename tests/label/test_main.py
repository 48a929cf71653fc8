"""Tests for radlas_monai.label.main: what the app says at startup, and the app under MONAI Label's own launcher."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from label_fixtures import write_studies
from label_server import free_port, running_server, server_env

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("monailabel") is None, reason="MONAI Label is not installed: run scripts/install_label.sh"
)


def _spec(name: str, *searched: Path):
    from radlas_monai.label.models import BundleSpec

    found = [p for p in searched if p.is_file()]
    return BundleSpec(name, found[0] if found else searched[-1], "tiny", 64, {}, tuple(searched))


def test_models_report_names_served_weights_and_where_missing_ones_were_looked_for(tmp_path):
    from radlas_monai.label.main import models_report

    weights = tmp_path / "pretrain" / "models" / "model.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    own = tmp_path / "lesion_localization" / "models" / "model.pt"
    missing = tmp_path / "finetune_classification" / "models" / "model.pt"
    specs = {"radlas_lesion": _spec("lesion", own, weights), "radlas_classification": _spec("finetune", missing)}
    origins = {"radlas_lesion": "--lesion_bundle", "radlas_classification": "$RADLAS_BUNDLES_DIR"}
    message, all_served = models_report(specs, origins)
    lines = message.splitlines()
    assert not all_served and lines[0].startswith("RadLAS MONAI Label serves 1 of 2 models")
    assert lines[1].split() == ["radlas_lesion", "served", "weights", str(weights), "(from", "--lesion_bundle)"]
    assert lines[2].split()[:5] == ["radlas_classification", "NOT", "SERVED", "no", "weights"]
    assert f"at {missing} (from $RADLAS_BUNDLES_DIR)" in lines[2]
    assert "--classification_checkpoint" in lines[3]
    message, all_served = models_report({"radlas_lesion": specs["radlas_lesion"]}, origins)
    assert all_served and len(message.splitlines()) == 2


@pytest.mark.slow
def test_monailabel_launcher_without_weights_says_so_and_keeps_the_app_folder_clean(tmp_path):
    """``monailabel start_server`` on an app folder holding only ``main.py``, with bundles that have no weights."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("from radlas_monai.label.main import RadLASLabelApp  # noqa: F401\n")
    bundles = tmp_path / "bundles"
    for name in ("lesion_localization", "finetune_classification"):
        (bundles / name).mkdir(parents=True)
    studies = write_studies(tmp_path / "studies")
    port = free_port()
    conf = ["--conf", "lesion_bundle", str(bundles / "lesion_localization")]
    conf += ["--conf", "classification_bundle", str(bundles / "finetune_classification")]
    command = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies)]
    command += ["--host", "127.0.0.1", "--port", str(port), *conf]
    with running_server(command, tmp_path, port, server_env(tmp_path / "cache")) as server:
        status, _, body = server.request("GET", "/info/")
        console = server.log.read_text()
    assert status == 200 and json.loads(body)["models"] == {}
    lesion = (
        f"{bundles / 'lesion_localization' / 'models' / 'model.pt'} or {bundles / 'pretrain' / 'models' / 'model.pt'}"
    )
    assert "RadLAS MONAI Label serves 0 of 2 models" in console
    assert f"NOT SERVED  no weights at {lesion} (from --lesion_bundle)" in console
    assert f"no weights at {bundles / 'finetune_classification' / 'models' / 'model.pt'}" in console
    assert sorted(p.name for p in app.iterdir()) == ["main.py"]  # no logs/, model/, lib/, bin/
    log_file = tmp_path / "cache" / "logs" / "app.log"
    assert "RadLAS MONAI Label serves 0 of 2 models" in log_file.read_text()
