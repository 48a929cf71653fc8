"""The lesion_localization bundle through the real ``monai.bundle`` command line: inference and evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bundle_runner import run_bundle

pytestmark = pytest.mark.slow

SECRETS = ("DOE", "Doe", "JOHN", "John", "12345", "chest", "lateral")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny, untrained pretrain checkpoint (the bundle's default comes from the pretrain bundle)."""
    from radlas_monai.networks import RadLAS

    path = tmp_path_factory.mktemp("pretrain") / "model.pt"
    torch.manual_seed(0)
    torch.save(RadLAS(preset="tiny", img_size=64).state_dict(), path)
    return path


def _inputs(folder):
    from radlas_monai.data.writers import write_dicom, write_png

    rng = np.random.default_rng(0)
    write_dicom(
        (rng.random((150, 100)) * 4000).astype(np.uint16),
        folder / "DOE_JOHN_12345.dcm",
        spacing=(0.2, 0.3),
        patient={"PatientName": "Doe^John", "PatientID": "12345"},
    )
    write_png((rng.random((90, 120)) * 255).astype(np.uint8), folder / "png" / "chest.png")
    write_png((rng.random((70, 50)) * 255).astype(np.uint8), folder / "png" / "lateral.png")
    (folder / "bad" / "broken.png").parent.mkdir(parents=True)
    (folder / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)


def test_inference_on_dicom_and_png_keeps_input_geometry_and_hides_identifiers(checkpoint, tmp_path):
    from PIL import Image

    from radlas_monai.data.loader import LoadRadiograph

    _inputs(tmp_path / "inputs")
    out = tmp_path / "out"
    overrides = {"image_size": 64, "ckpt_path": checkpoint, "dataset_dir": tmp_path / "inputs", "output_dir": out}
    run_bundle(tmp_path, "lesion_localization", "inference", overrides)
    index = json.loads((out / "predictions.json").read_text())["predictions"]
    reader = LoadRadiograph(reject_constant=False)
    spacings = {}
    for record in index:
        files = record["files"]
        assert set(files) == {"heatmap", "mask", "overlay", "json"}
        assert all(name.startswith(record["image_id"]) for name in files.values())
        heatmap = reader(out / files["heatmap"])
        h, w = record["shape"]
        assert tuple(heatmap.shape[1:]) == (h, w) and 0.0 <= float(heatmap.min()) <= float(heatmap.max()) <= 1.0
        spacings[(h, w)] = heatmap.meta.get("spacing")
        mask = np.asarray(Image.open(out / files["mask"]))
        assert mask.shape == (h, w) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert Image.open(out / files["overlay"]).size == (w, h)
        detail = json.loads((out / files["json"]).read_text())
        assert detail["image_score"] == pytest.approx(float(heatmap.max()), abs=1e-5)
        for box in detail["boxes"]:
            x0, y0, x1, y1 = box["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and 0.0 <= box["score"] <= 1.0
        assert len(detail["heatmap_range"]) == 2
    assert set(spacings) == {(150, 100), (90, 120), (70, 50)}
    np.testing.assert_allclose(spacings[(150, 100)], (0.2, 0.3), rtol=1e-5)
    skipped = json.loads((out / "skipped.json").read_text())["skipped"]
    assert [(s["path"].endswith("broken.png"), s["kind"]) for s in skipped] == [(True, skipped[0]["kind"])]
    for path in out.rglob("*"):
        text = path.name + (path.read_text() if path.suffix == ".json" else "")
        assert not [s for s in SECRETS if s in text], path.name


def test_evaluate_on_synthetic_data_writes_metrics_plot_and_mlflow_run(checkpoint, tmp_path):
    out = tmp_path / "evaluate"
    overrides = {
        "image_size": 64,
        "synthetic_images": 24,
        "bootstrap": 20,
        "ckpt_path": checkpoint,
        "output_dir": out,
    }
    run_bundle(tmp_path, "lesion_localization", "evaluate", overrides)
    metrics = json.loads((out / "metrics.json").read_text())
    radlas = metrics["radlas"]
    assert radlas["n_images"] >= 3 and radlas["n_lesions"] >= 1
    assert 0.0 <= radlas["pointing_game"] <= 1.0 and "froc_curve" in radlas and "per_class" in radlas
    assert "| radlas |" in (out / "metrics.md").read_text()
    assert (out / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["radlas.bundle"] == "lesion_localization"
    assert run.data.tags.get("radlas.checkpoint_sha256")
    assert any(key.endswith("radlas/pointing_game") for key in run.data.metrics), sorted(run.data.metrics)[:10]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "localization")}
    assert {"localization/metrics.json", "localization/metrics.md", "localization/froc.png"} <= artifacts
