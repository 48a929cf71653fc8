"""The pretrain bundle through the real ``monai.bundle`` command line: train, resume, evaluate, infer, DDP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from bundle_runner import KILL_INSIDE_SECOND_SAVE, REPO, bundle_command, isolated_env, run_bundle

pytestmark = pytest.mark.slow

TINY = {"image_size": 64, "synthetic_images": 24, "batch_size": 4, "val_batch_size": 8, "limit": 8, "log_interval": 1}
#: the train StatsHandler's line: ``Epoch: 1/2, Iter: 1/2 -- train_loss: 1.1740``
LOSS_LINE = re.compile(r"Epoch: (\d+)/\d+, Iter: (\d+)/(\d+) -- train_loss: (\d+\.\d+)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted, seeded 2-epoch run of train.json, on one thread (compared bit for bit with a resumed run)."""
    root = tmp_path_factory.mktemp("pretrain")
    overrides = {**TINY, "max_epochs": 2, "val_interval": 1, "output_dir": root / "eval", "ckpt_dir": root / "models"}
    result = run_bundle(root, "pretrain", "train", overrides, threads=1)
    return root, result


def _network_state(path):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["network"] if "network" in checkpoint else checkpoint


def test_train_writes_checkpoints_loadable_with_weights_only(trained):
    root, _ = trained
    for name in ("checkpoint_last.pt", "checkpoint_best.pt", "model.pt"):
        state = torch.load(root / "models" / name, map_location="cpu", weights_only=True)
        assert state, name
    last = torch.load(root / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert {"network", "optimizer", "lr_scheduler", "trainer"} <= set(last)
    from radlas_monai.networks import RadLAS

    RadLAS(preset="tiny", img_size=64).load_state_dict(_network_state(root / "models" / "model.pt"))


def test_train_logs_metrics_and_images_to_mlflow(trained):
    root, _ = trained
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("radlas")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    metrics = set(run.data.metrics)
    assert {"train_epoch/loss", "train_epoch/loss_reconstruction", "train_epoch/loss_grounding"} <= metrics
    assert any(m.startswith("train/loss") for m in metrics), metrics
    assert any("val_pixel_auroc" in m for m in metrics), metrics
    history = client.get_metric_history(run.info.run_id, "train_epoch/loss")
    assert [h.step for h in history] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "images")}
    assert any(p.endswith(".png") for p in artifacts), artifacts
    assert client.list_artifacts(run.info.run_id, "config")
    assert run.data.params.get("max_epochs") == "2"


def test_train_loss_is_logged_every_iteration_and_stored_in_mlflow(trained):
    """The StatsHandler prints the loss of every iteration (log_interval 1); the MLflow run holds the same values."""
    root, result = trained
    log = result.stdout + result.stderr
    assert "ignoring non-scalar output in StatsHandler" not in log
    logged = [float(value) for *_, value in LOSS_LINE.findall(log)]
    per_epoch = int(LOSS_LINE.search(log)[3]) if logged else 0
    assert per_epoch > 0 and len(logged) == 2 * per_epoch, log[-3000:]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    history = sorted(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1, len(logged) + 1))
    assert [m.value for m in history] == pytest.approx(logged, abs=5.1e-5)  # printed with 4 decimals


def test_validation_reports_effective_rank_of_the_embeddings(trained):
    """Effective rank (participation ratio) of the global embedding and of the mean token over the validation set,
    in the log and in MLflow after every validation; at most min(N - 1, D) for N validation images."""
    root, result = trained
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    images = TINY["limit"]
    for name in ("val_effective_rank_embedding", "val_effective_rank_mean_token"):
        assert re.search(rf"Epoch\[2\] Metrics -- .*{name}: \d+\.\d+", result.stdout + result.stderr), name
        history = client.get_metric_history(run.info.run_id, f"val/{name}")
        assert sorted(m.step for m in history) == [1, 2]
        assert all(1.0 <= m.value <= images - 1 + 1e-6 for m in history), history


def test_train_logs_progress_and_skip_reports(trained):
    root, result = trained
    assert "train_loss" in result.stdout + result.stderr
    report = json.loads((root / "eval" / "skipped_training.json").read_text())
    assert report["checked"] > 0 and report["skipped"] == []


def _epoch_of(path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["meta"]["epoch"])
    except Exception:  # not there yet
        return 0


def test_sigkill_then_resume_reaches_the_same_weights(trained, tmp_path):
    """SIGKILL the same seeded run inside its epoch-2 save of checkpoint_last.pt (the new file complete, epoch 1's not
    yet replaced), resume it: the final weights equal the uninterrupted run's exactly. Both runs on one thread."""
    root, _ = trained
    overrides = {
        **TINY,
        "max_epochs": 2,
        "val_interval": 1,
        "output_dir": tmp_path / "eval",
        "ckpt_dir": tmp_path / "models",
    }
    last = tmp_path / "models" / "checkpoint_last.pt"
    # the kill comes from inside the run (KILL_INSIDE_SECOND_SAVE), not from a poll racing the end of epoch 2
    command = bundle_command("pretrain", "train", overrides, launcher=[sys.executable, "-c", KILL_INSIDE_SECOND_SAVE])
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=isolated_env(tmp_path, threads=1),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL, f"the run was not killed in its epoch-2 save:\n{output[-4000:]}"
    assert _epoch_of(last) == 1
    run_bundle(tmp_path, "pretrain", "train", {**overrides, "resume": True}, threads=1)
    straight = _network_state(root / "models" / "checkpoint_last.pt")
    resumed = _network_state(last)
    mismatched = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not mismatched, f"{len(mismatched)} tensors differ, e.g. {mismatched[:3]}"


def test_evaluate_writes_metrics(trained):
    root, _ = trained
    out = root / "evaluate"
    run_bundle(root, "pretrain", "evaluate", {**TINY, "ckpt_dir": root / "models", "output_dir": out})
    metrics = dict(line.split(",") for line in (out / "metrics.csv").read_text().split())
    assert 0.0 <= float(metrics["test_pixel_auroc"]) <= 1.0
    assert float(metrics["test_recon_l1"]) >= 0.0


def test_inference_maps_match_input_geometry_and_hide_names(trained, tmp_path):
    root, _ = trained
    from radlas_monai.data.loader import LoadRadiograph
    from radlas_monai.data.writers import write_dicom, write_png

    inputs = tmp_path / "inputs"
    rng = np.random.default_rng(0)
    write_dicom(
        (rng.random((150, 100)) * 4000).astype(np.uint16),
        inputs / "DOE_JOHN_12345.dcm",
        spacing=(0.2, 0.3),
        patient={"PatientName": "Doe^John", "PatientID": "12345"},
    )
    write_png((rng.random((90, 120)) * 255).astype(np.uint8), inputs / "png" / "chest.png")
    out = tmp_path / "maps"
    run_bundle(
        root,
        "pretrain",
        "inference",
        {"image_size": 64, "ckpt_dir": root / "models", "dataset_dir": inputs, "output_dir": out},
    )
    index = json.loads((out / "predictions.json").read_text())["predictions"]
    assert len(index) == 2
    loader = LoadRadiograph(reject_constant=False)
    shapes = {}
    for record in index:
        lesion_map = loader(out / record["files"]["lesion_map"])
        restored = loader(out / record["files"]["restored"])
        assert tuple(lesion_map.shape[1:]) == tuple(record["shape"]) == tuple(restored.shape[1:])
        assert (out / record["files"]["overlay"]).is_file()
        shapes[tuple(record["shape"])] = lesion_map.meta.get("spacing")
    assert set(shapes) == {(150, 100), (90, 120)}
    np.testing.assert_allclose(shapes[(150, 100)], (0.2, 0.3), rtol=1e-5)
    names = " ".join(p.name for p in out.iterdir()) + (out / "predictions.json").read_text()
    assert "DOE" not in names and "12345" not in names and "chest" not in names
    assert all(record["at_input_geometry"] for record in index)


def test_two_process_ddp_on_cpu(tmp_path):
    # --standalone: torchrun's own rendezvous store on a port the OS assigns it (no free-port probe to race)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    overrides = {
        **TINY,
        "max_epochs": 1,
        "val_interval": 1,
        "output_dir": tmp_path / "eval",
        "ckpt_dir": tmp_path / "models",
    }
    # one thread per rank: two ranks on a 2-core machine
    run_bundle(tmp_path, "pretrain", ["train", "multi_gpu_train"], overrides, launcher=launcher, threads=1)
    assert torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_runs_from_inside_the_bundle_folder_with_monai_tracking_switch(tmp_path):
    """The documented command from inside bundles/pretrain, with MONAI's own ``--tracking mlflow`` switch added."""
    overrides = {**TINY, "max_epochs": 1, "val_interval": 1, "limit": 4, "tracking": "mlflow"}
    bundle = REPO / "bundles" / "pretrain"
    run_bundle(
        tmp_path,
        "pretrain",
        "train",
        {**overrides, "output_dir": tmp_path / "eval", "ckpt_dir": tmp_path / "m"},
        cwd=bundle,
    )
    assert (tmp_path / "m" / "model.pt").is_file()
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert runs and all(run.info.status == "FINISHED" for run in runs)
    metrics = set().union(*(run.data.metrics for run in runs))
    assert "train_loss" in metrics and "train_epoch/loss" in metrics  # MONAI's MLFlowHandler and RadLAS's
