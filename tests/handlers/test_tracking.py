"""Tests for radlas_monai.handlers.tracking.RadLASMLFlowHandler against a real SQLite MLflow store."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from radlas_monai.handlers.mlflow_runs import TAG_FAILURE_REASON, TAG_HOST, TAG_PID, owner_tags
from radlas_monai.handlers.mlflow_store import TrackingStoreError, prepare_tracking_store, sqlite_db_path
from radlas_monai.handlers.tracking import RadLASMLFlowHandler, default_loss_transform


def _engines(fail_at: int | None = None) -> tuple[Engine, Engine]:
    """A trainer whose step returns MONAI-style decollated output, and an evaluator with one metric."""

    def step(engine: Engine, batch: int) -> list[dict]:
        if fail_at is not None and engine.state.iteration == fail_at:
            raise RuntimeError("simulated crash in the training step")
        return [{"loss": torch.tensor(0.1 * batch), "loss_rec": 0.05 * batch, "image": torch.zeros(1, 4, 4)}]

    trainer, evaluator = Engine(step), Engine(lambda engine, batch: None)

    @evaluator.on(Events.EPOCH_COMPLETED)
    def compute_metric(engine: Engine) -> None:
        engine.state.metrics["auroc"] = 0.5 + 0.1 * trainer.state.epoch

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        evaluator.run([0], max_epochs=1)

    return trainer, evaluator


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, round(m.value, 6)) for m in client.get_metric_history(run_id, key))


@pytest.mark.parametrize(
    "output, expected",
    [
        [[{"loss": torch.tensor(2.0), "loss_rec": 1.0, "pred": torch.zeros(2)}], {"loss": 2.0, "loss_rec": 1.0}],
        [{"loss": 1.5, "losses": {"contrast": torch.tensor(0.5)}}, {"loss": 1.5, "loss_contrast": 0.5}],
        [torch.tensor(3.0), {"loss": 3.0}],
        [None, {}],
    ],
)
def test_default_loss_transform(output, expected) -> None:
    assert default_loss_transform(output) == pytest.approx(expected)


def test_full_run_is_logged(store_uri: str, tmp_path: Path) -> None:
    config_file = tmp_path / "train.json"
    config_file.write_text(json.dumps({"network": {"dim": 8}, "optimizer": {"lr": 0.001}}))
    checkpoint = tmp_path / "checkpoint_best.pt"
    checkpoint.write_bytes(b"weights" * 100)
    handler = RadLASMLFlowHandler(
        store_uri,
        "radlas_pretrain",
        bundle="pretrain",
        parent_run_id="parent123",
        config=config_file,
        iteration_interval=2,
        checkpoint_path=checkpoint,
        output_dir=tmp_path / "out",
    )
    trainer, evaluator = _engines()
    handler.attach(trainer)
    handler.attach(evaluator, role="evaluator")
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: handler.log_image(np.full((8, 8), 0.5), "panel", e.state.epoch)
    )
    trainer.run([1, 2, 3, 4], max_epochs=2)

    client = _client(store_uri)
    run = client.get_run(handler.run_id)
    assert run.info.status == "FINISHED"
    assert re.fullmatch(r"radlas_pretrain-\d{8}-\d{6}-[0-9a-f]{8}", run.info.run_name)
    params, tags = run.data.params, run.data.tags
    assert params["network.dim"] == "8" and params["optimizer.lr"] == "0.001"
    assert params["engine.max_epochs"] == "2" and params["engine.epoch_length"] == "4"
    assert tags["radlas.bundle"] == "pretrain" and tags["radlas.parent_run_id"] == "parent123"
    assert tags["radlas.checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert tags[TAG_PID] == owner_tags()[TAG_PID]
    assert _history(client, handler.run_id, "train/loss") == [(2, 0.2), (4, 0.4), (6, 0.2), (8, 0.4)]
    assert _history(client, handler.run_id, "train_epoch/loss") == [(1, 0.25), (2, 0.25)]
    assert _history(client, handler.run_id, "train_epoch/loss_rec") == [(1, 0.125), (2, 0.125)]
    assert _history(client, handler.run_id, "val/auroc") == [(1, 0.6), (2, 0.7)]
    artifacts = {f.path for d in ("config", "checkpoints", "images") for f in client.list_artifacts(handler.run_id, d)}
    expected = {"config/train.json", "checkpoints/checkpoint_best.pt", "images/panel_step000001.png"}
    assert expected <= artifacts
    # artifacts live next to the database, under artifacts/<experiment>/
    assert run.info.artifact_uri.startswith(
        (sqlite_db_path(store_uri).parent / "artifacts" / "radlas_pretrain").as_uri()
    )


def _bundle_checkpoints(folder: Path) -> Path:
    """What ``AtomicCheckpointSaver`` leaves in ``models/``: a full best checkpoint and ``model.pt`` (the network)."""
    folder.mkdir(parents=True)
    network = {"weight": torch.arange(6.0).reshape(2, 3)}
    torch.save({"network": network, "meta": {"epoch": 1}}, folder / "checkpoint_best.pt")
    torch.save(network, folder / "model.pt")
    return folder


def test_checkpoint_digest_is_the_one_downstream_runs_record(store_uri: str, tmp_path: Path) -> None:
    """The pretrain run hashes ``model.pt``, the file a fine-tune run loads and records as its parent's digest."""
    import shutil

    from radlas_monai.engines.lineage import TAG_PARENT_CHECKPOINT_SHA256, find_parent_run_id, lineage_tags

    models = _bundle_checkpoints(tmp_path / "models")
    handler = RadLASMLFlowHandler(store_uri, "radlas", checkpoint_path=models / "checkpoint_best.pt")
    trainer, _ = _engines()
    handler.attach(trainer)
    trainer.run([1, 2], max_epochs=1)

    client = _client(store_uri)
    tags = client.get_run(handler.run_id).data.tags
    assert tags["radlas.checkpoint_sha256"] == lineage_tags(models / "model.pt")[TAG_PARENT_CHECKPOINT_SHA256]
    logged = {f.path for f in client.list_artifacts(handler.run_id, "checkpoints")}
    assert logged == {"checkpoints/checkpoint_best.pt", "checkpoints/model.pt"}
    downloaded = tmp_path / "downloaded" / "model.pt"  # model.pt alone, without the checkpoint_best.pt beside it
    downloaded.parent.mkdir()
    shutil.copy(models / "model.pt", downloaded)
    assert find_parent_run_id(downloaded, store_uri) == handler.run_id


@pytest.mark.parametrize("exists", [True, False], ids=["given", "missing"])
def test_explicit_weights_path(store_uri: str, tmp_path: Path, exists: bool) -> None:
    models = _bundle_checkpoints(tmp_path / "models")
    weights = tmp_path / "exported" / "weights.pt"
    if exists:
        weights.parent.mkdir()
        weights.write_bytes(b"exported weights")
    handler = RadLASMLFlowHandler(
        store_uri, "radlas", checkpoint_path=models / "checkpoint_best.pt", weights_path=weights
    )
    trainer, _ = _engines()
    handler.attach(trainer)
    trainer.run([1], max_epochs=1)
    tags = _client(store_uri).get_run(handler.run_id).data.tags
    expected = hashlib.sha256(weights.read_bytes()).hexdigest() if exists else None
    assert tags.get("radlas.checkpoint_sha256") == expected


def test_each_job_gets_a_new_run_and_dead_jobs_are_closed(store_uri: str) -> None:
    client = _client(store_uri)
    experiment_id = prepare_tracking_store(store_uri, "jobs")
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    crashed = client.create_run(experiment_id, tags={TAG_PID: str(dead_pid), TAG_HOST: socket.gethostname()})
    other_live_job = client.create_run(experiment_id, tags=owner_tags())
    run_ids = []
    for _ in range(2):
        handler = RadLASMLFlowHandler(store_uri, "jobs", iteration_interval=1)  # run_name=None: the bundle default
        trainer, _ = _engines()
        handler.attach(trainer)
        trainer.run([1, 2], max_epochs=1)
        run_ids.append(handler.run_id)
    assert len(set(run_ids) | {crashed.info.run_id, other_live_job.info.run_id}) == 4
    assert client.get_run(crashed.info.run_id).info.status == "FAILED"
    assert str(dead_pid) in client.get_run(crashed.info.run_id).data.tags[TAG_FAILURE_REASON]
    assert client.get_run(other_live_job.info.run_id).info.status == "RUNNING"
    for untouched in (crashed, other_live_job):
        assert client.get_run(untouched.info.run_id).data.metrics == {}
    assert all(client.get_run(r).info.status == "FINISHED" for r in run_ids)


def test_exception_ends_run_failed_and_is_reraised(store_uri: str) -> None:
    handler = RadLASMLFlowHandler(store_uri, "crash", iteration_interval=1)
    trainer, _ = _engines(fail_at=3)
    handler.attach(trainer)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run([1, 2, 3, 4], max_epochs=1)
    client = _client(store_uri)
    run = client.get_run(handler.run_id)
    assert run.info.status == "FAILED"
    assert "simulated crash" in run.data.tags[TAG_FAILURE_REASON]
    assert [s for s, _ in _history(client, handler.run_id, "train/loss")] == [1, 2]


def test_unusable_store_fails_at_start(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"garbage" * 50)
    steps = []
    trainer = Engine(lambda engine, batch: steps.append(batch))
    RadLASMLFlowHandler(f"sqlite:///{db}", "x").attach(trainer)
    with pytest.raises(TrackingStoreError, match=re.escape(str(db))):
        trainer.run([1, 2], max_epochs=1)
    assert steps == []


def test_standalone_evaluator_owns_its_run(store_uri: str) -> None:
    handler = RadLASMLFlowHandler(store_uri, "evaluation", bundle="lesion_localization")
    _, evaluator = _engines()
    handler.attach(evaluator, role="evaluator")
    evaluator.run([0], max_epochs=1)
    run = _client(store_uri).get_run(handler.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics == {"eval/auroc": pytest.approx(0.5)}


def test_locked_store_never_stops_training_and_loses_nothing(
    store_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RadLASMLFlowHandler(
        store_uri, "locked", iteration_interval=1, sqlite_timeout_s=0.05, retry_interval_s=0.0, output_dir=tmp_path
    )
    trainer, _ = _engines()
    handler.attach(trainer)
    locker = sqlite3.connect(sqlite_db_path(store_uri), isolation_level=None)

    @trainer.on(Events.ITERATION_COMPLETED(once=10))
    def lock(engine: Engine) -> None:
        locker.execute("BEGIN EXCLUSIVE")  # another process holding the database

    @trainer.on(Events.ITERATION_COMPLETED(once=35))
    def release(engine: Engine) -> None:
        locker.execute("COMMIT")

    starts: list[float] = []  # when each iteration starts, and when the run ends (after the handler's final flush)
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda _: starts.append(time.monotonic()))
    trainer.add_event_handler(Events.COMPLETED, lambda _: starts.append(time.monotonic()))
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        trainer.run(list(range(10)), max_epochs=5)  # 50 iterations, 25 of them against a locked store
    elapsed = time.monotonic() - start
    locker.close()

    assert trainer.state.iteration == 50
    lock_warnings = [r for r in caplog.records if r.name.startswith("radlas_monai") and "locked" in r.getMessage()]
    assert len(lock_warnings) == 1
    assert not [r for r in caplog.records if r.name.startswith("mlflow") and r.levelno >= logging.ERROR]
    client = _client(store_uri)
    assert [s for s, _ in _history(client, handler.run_id, "train/loss")] == list(range(1, 51))
    assert [s for s, _ in _history(client, handler.run_id, "train_epoch/loss")] == [1, 2, 3, 4, 5]
    assert client.get_run(handler.run_id).info.status == "FINISHED"
    assert not list(tmp_path.glob("mlflow_unflushed_*.json"))
    # MLflow alone would wait 20 s on every one of the 25 locked calls: no iteration (with the handler's work after
    # it) may stall for half of that, and the whole run stays far below 25 x 20 s (bounds with room for a loaded CI)
    stalls = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(stalls) == 50 and max(stalls) < 10.0, max(stalls)
    assert elapsed < 120.0
