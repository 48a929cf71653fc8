"""Tests for radlas_monai.handlers.mlflow_buffer: failures are buffered, warned once, retried, never raised."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from radlas_monai.handlers.mlflow_buffer import BufferedMlflowWriter

LOGGER = "radlas_monai.handlers.mlflow_buffer"


class StoreDown(Exception):
    """Stands in for ``MlflowException(... database is locked)``."""

    error_code = "TEMPORARILY_UNAVAILABLE"


class Rejected(Exception):
    """Stands in for MLflow rejecting an entry for good."""

    error_code = "INVALID_PARAMETER_VALUE"


class FakeClient:
    """Records what reaches the store; fails while ``down`` is set, rejects keys in ``invalid``."""

    def __init__(self) -> None:
        self.down = False
        self.invalid: set[str] = set()
        self.metrics: list = []
        self.params: dict = {}
        self.tags: dict = {}
        self.calls = 0
        self.status: str | None = None

    def create_run(self, experiment_id, run_name, tags):
        self.calls += 1
        if self.down:
            raise StoreDown("(sqlite3.OperationalError) database is locked")
        return SimpleNamespace(info=SimpleNamespace(run_id="run1", artifact_uri=None))

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        self.calls += 1
        if self.down:
            raise StoreDown("(sqlite3.OperationalError) database is locked")
        keys = {m.key for m in metrics} | {p.key for p in params} | {t.key for t in tags}
        if keys & self.invalid:
            raise Rejected(f"invalid {sorted(keys & self.invalid)}")
        self.metrics += [(m.key, m.value, m.step) for m in metrics]
        self.params.update({p.key: p.value for p in params})
        self.tags.update({t.key: t.value for t in tags})

    def set_terminated(self, run_id, status):
        if self.down:
            raise StoreDown("locked")
        self.status = status


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_outage_is_buffered_warned_once_and_flushed_later(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient()
    writer = BufferedMlflowWriter(client, "1", "job", retry_interval_s=0.0)
    writer.log_metrics({"loss": 1.0}, step=1)
    client.down = True
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for step in range(2, 12):
            writer.log_metrics({"loss": float(step)}, step=step)  # must not raise
    assert len(_warnings(caplog)) == 1 and "database is locked" in _warnings(caplog)[0]
    assert writer.pending["metrics"] == 10
    client.down = False
    writer.log_metrics({"loss": 12.0}, step=12)
    assert [s for _, _, s in client.metrics] == list(range(1, 13))  # none lost, in order
    assert writer.pending["metrics"] == 0


def test_retry_interval_limits_attempts() -> None:
    client = FakeClient()
    writer = BufferedMlflowWriter(client, "1", "job", retry_interval_s=3600.0)
    client.down = True
    writer.log_metrics({"loss": 1.0}, step=1)
    calls = client.calls
    for step in range(2, 50):
        writer.log_metrics({"loss": 1.0}, step=step)
    assert client.calls == calls  # no store call until the interval passes
    client.down = False
    assert writer.flush(force=True) and len(client.metrics) == 49


def test_run_created_once_the_store_is_back() -> None:
    client = FakeClient()
    client.down = True
    writer = BufferedMlflowWriter(client, "1", "job", {"radlas.bundle": "pretrain"}, retry_interval_s=0.0)
    writer.log_params({"lr": "0.1"})
    writer.log_metrics({"loss": 1.0}, step=1)
    assert writer.run_id is None and writer.pending["run"] == 1
    client.down = False
    assert writer.flush()
    assert writer.run_id == "run1" and client.params == {"lr": "0.1"} and len(client.metrics) == 1


def test_rejected_entry_dropped_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient()
    client.invalid = {"bad"}
    writer = BufferedMlflowWriter(client, "1", "job", retry_interval_s=0.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        writer.log_params({"good": "1", "bad": "2"})
        assert writer.flush()
    assert client.params == {"good": "1"}
    assert any("'bad'" in m and "dropped" in m for m in _warnings(caplog))


def test_metric_keys_sanitized_and_non_scalars_skipped() -> None:
    client = FakeClient()
    writer = BufferedMlflowWriter(client, "1", "job")
    writer.log_metrics({"val/AUROC(Nodule)": 0.5, "image": [1, 2], "text": "n/a"}, step=3)
    assert client.metrics == [("val/AUROC_Nodule_", 0.5, 3)]


def test_unflushable_entries_dumped(tmp_path: Path) -> None:
    client = FakeClient()
    writer = BufferedMlflowWriter(client, "1", "job", retry_interval_s=0.0)
    writer.flush()
    client.down = True
    writer.log_metrics({"loss": 2.5}, step=7)
    writer.set_tags({"radlas.checkpoint_sha256": "abc"})
    assert not writer.flush_until(0.2, poll_s=0.05)
    assert not writer.terminate("FINISHED")
    record = json.loads(writer.dump_pending(tmp_path / "pending.json", "FINISHED").read_text())
    assert record["status"] == "FINISHED" and record["run_id"] == "run1"
    assert [(m["key"], m["value"], m["step"]) for m in record["metrics"]] == [("loss", 2.5, 7)]
    assert record["tags"] == {"radlas.checkpoint_sha256": "abc"}
