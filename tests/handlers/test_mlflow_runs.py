"""Tests for radlas_monai.handlers.mlflow_runs: run names, owner tags, closing runs of dead jobs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from radlas_monai.handlers.mlflow_runs import (
    TAG_FAILURE_REASON,
    TAG_HOST,
    TAG_PID,
    TAG_PID_START,
    mark_stale_runs_failed,
    owner_is_alive,
    owner_tags,
    unique_run_name,
)
from radlas_monai.handlers.mlflow_store import prepare_tracking_store


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_unique_run_name() -> None:
    names = {unique_run_name("radlas pretrain") for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"radlas_pretrain-\d{8}-\d{6}-[0-9a-f]{8}", n) for n in names)


def test_owner_tags_of_this_process() -> None:
    tags = owner_tags()
    assert tags[TAG_PID] == str(os.getpid()) and tags[TAG_HOST] == socket.gethostname()
    assert owner_is_alive(tags) is True


def test_dead_owner(dead_pid: int) -> None:
    assert owner_is_alive({TAG_PID: str(dead_pid), TAG_HOST: socket.gethostname()}) is False


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/stat"), reason="needs Linux /proc")
def test_recycled_pid_is_not_the_owner() -> None:
    tags = {**owner_tags(), TAG_PID_START: "1"}  # same pid, but started at another time
    assert owner_is_alive(tags) is False


@pytest.mark.parametrize("tags", [{}, {TAG_PID: "123", TAG_HOST: "another-host.example"}, {TAG_PID: "x", TAG_HOST: ""}])
def test_unknowable_owner(tags: dict) -> None:
    assert owner_is_alive(tags) is None


def test_mark_stale_runs_failed(store_uri: str, dead_pid: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    experiment_id = prepare_tracking_store(store_uri, "stale")
    dead_tags = {TAG_PID: str(dead_pid), TAG_HOST: socket.gethostname()}
    dead = client.create_run(experiment_id, tags=dead_tags).info.run_id
    alive = client.create_run(experiment_id, tags=owner_tags()).info.run_id
    foreign = client.create_run(experiment_id, tags={TAG_PID: str(dead_pid), TAG_HOST: "elsewhere"}).info.run_id
    untagged = client.create_run(experiment_id).info.run_id
    finished = client.create_run(experiment_id, tags=dead_tags).info.run_id
    client.set_terminated(finished, "FINISHED")

    assert mark_stale_runs_failed(client, experiment_id) == [dead]
    status = {run_id: client.get_run(run_id).info.status for run_id in (dead, alive, foreign, untagged, finished)}
    assert status == {dead: "FAILED", alive: "RUNNING", foreign: "RUNNING", untagged: "RUNNING", finished: "FINISHED"}
    assert str(dead_pid) in client.get_run(dead).data.tags[TAG_FAILURE_REASON]
