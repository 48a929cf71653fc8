"""Tests for radlas_monai.handlers.mlflow_store: URIs, safe store creation, clear store errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from radlas_monai.handlers.mlflow_store import (
    RADLAS_MLFLOW_DIR_ENV,
    TrackingStoreError,
    default_tracking_uri,
    experiment_artifact_location,
    prepare_tracking_store,
    resolve_tracking_uri,
    set_sqlite_busy_timeout,
    sqlite_db_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(RADLAS_MLFLOW_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_default_uri_under_home(clean_env: Path) -> None:
    expected = (clean_env / "home" / ".radlas_monai" / "mlruns" / "mlflow.db").resolve()
    assert default_tracking_uri() == f"sqlite:///{expected.as_posix()}"
    assert sqlite_db_path(default_tracking_uri()) == expected


def test_default_uri_from_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RADLAS_MLFLOW_DIR_ENV, str(clean_env / "shared_store"))
    assert sqlite_db_path(default_tracking_uri()) == (clean_env / "shared_store" / "mlflow.db").resolve()


# [explicit argument, MLFLOW_TRACKING_URI, expected winner]
PRECEDENCE_CASES = [
    ["sqlite:////a/explicit.db", "sqlite:////b/env.db", "sqlite:////a/explicit.db"],
    [None, "sqlite:////b/env.db", "sqlite:////b/env.db"],
    ["", "http://127.0.0.1:5000", "http://127.0.0.1:5000"],
    [None, None, "default"],
]


@pytest.mark.parametrize("explicit, env, expected", PRECEDENCE_CASES)
def test_resolve_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch, explicit, env, expected) -> None:
    if env is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    expected = default_tracking_uri() if expected == "default" else expected
    assert resolve_tracking_uri(explicit) == expected


@pytest.mark.parametrize("uri", ["/tmp/mlruns", "file:///tmp/mlruns", "./mlruns"])
def test_file_store_rejected(uri: str) -> None:
    with pytest.raises(ValueError, match="file store"):
        resolve_tracking_uri(uri)


def test_artifact_location_next_to_db(tmp_path: Path) -> None:
    location = experiment_artifact_location(f"sqlite:///{tmp_path}/mlflow.db", "radlas pretrain/v1")
    assert location == (tmp_path / "artifacts" / "radlas_pretrain_v1").as_uri()
    assert experiment_artifact_location("http://127.0.0.1:5000", "x") is None


def test_prepare_creates_store_and_is_idempotent(store_uri: str) -> None:
    from mlflow import MlflowClient

    first = prepare_tracking_store(store_uri, "radlas_pretrain")
    second = prepare_tracking_store(store_uri, "radlas_pretrain")
    assert first == second
    experiment = MlflowClient(store_uri).get_experiment(first)
    db_folder = sqlite_db_path(store_uri).parent
    assert experiment.artifact_location == (db_folder / "artifacts" / "radlas_pretrain").as_uri()
    assert (db_folder / "mlflow.db.lock").exists()


_EIGHT_PROCESSES = textwrap.dedent(
    """
    import json, multiprocessing as mp, sys
    sys.path.insert(0, sys.argv[2])
    import mlflow.store.tracking.sqlalchemy_store  # imported once, before forking
    from radlas_monai.handlers.mlflow_store import prepare_tracking_store

    def work(uri, barrier, queue):
        barrier.wait()
        try:
            queue.put(["ok", prepare_tracking_store(uri, "concurrent")])
        except Exception as err:
            queue.put(["error", repr(err)])

    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=work, args=(sys.argv[1], barrier, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join()
    print(json.dumps(results))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to start 8 processes at once cheaply")
def test_eight_processes_create_a_new_store_at_once(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/fresh/mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-c", _EIGHT_PROCESSES, uri, str(REPO_ROOT)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [status for status, _ in results] == ["ok"] * 8, results
    assert len({experiment_id for _, experiment_id in results}) == 1


def test_corrupt_db_fails_with_uri(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    uri = f"sqlite:///{db}"
    with pytest.raises(TrackingStoreError, match="not a SQLite database") as info:
        prepare_tracking_store(uri, "x")
    assert info.value.uri == uri and uri in str(info.value)


def test_damaged_sqlite_fails_fast(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # keep the magic header, destroy the schema page
    db.write_bytes(bytes(data))
    start = time.monotonic()
    with pytest.raises(TrackingStoreError, match="cannot be read as a SQLite database|cannot open"):
        prepare_tracking_store(f"sqlite:///{db}", "x")
    assert time.monotonic() - start < 10


def test_uncreatable_folder_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(TrackingStoreError, match="cannot create the store folder"):
        prepare_tracking_store(f"sqlite:///{blocker}/mlruns/mlflow.db", "x")


def test_db_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").mkdir()
    with pytest.raises(TrackingStoreError, match="is a directory"):
        prepare_tracking_store(f"sqlite:///{tmp_path}/mlflow.db", "x")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_folder_fails(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(TrackingStoreError, match="not writable"):
            prepare_tracking_store(f"sqlite:///{folder}/mlflow.db", "x")
    finally:
        folder.chmod(0o700)


def test_deleted_experiment_is_named(store_uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    client.delete_experiment(prepare_tracking_store(store_uri, "gone"))
    with pytest.raises(TrackingStoreError, match="'gone'.*deleted"):
        prepare_tracking_store(store_uri, "gone")


def test_busy_timeout_makes_locked_calls_fail_fast(store_uri: str) -> None:
    from mlflow import MlflowClient

    experiment_id = prepare_tracking_store(store_uri, "locked")
    client = MlflowClient(store_uri)
    assert set_sqlite_busy_timeout(client, 100)
    run = client.create_run(experiment_id)
    locker = sqlite3.connect(sqlite_db_path(store_uri), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.raises(Exception, match="locked"):
            client.log_metric(run.info.run_id, "m", 1.0)
        assert time.monotonic() - start < 5.0  # MLflow's own busy timeout is 20 s
    finally:
        locker.execute("COMMIT")
        locker.close()
    client.log_metric(run.info.run_id, "m", 1.0)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == [1.0]
