"""Run ownership: unique run names, owner tags, and closing runs whose job died.

Every RadLAS run records which process owns it (tags ``radlas.pid``, ``radlas.host`` and, on
Linux, ``radlas.pid_start``: the process start time in clock ticks, which tells a recycled pid from
the original process). A job that is killed (SIGKILL, OOM, power loss) leaves its run ``RUNNING``;
the next RadLAS job on the same host that starts in that experiment marks it ``FAILED`` with a
``radlas.failure_reason`` tag. Runs of other hosts, and runs without these tags (e.g. created by
MONAI's own ``MLFlowHandler``), are never touched: their owner cannot be checked from here.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from typing import Any

__all__ = [
    "TAG_PID",
    "TAG_HOST",
    "TAG_PID_START",
    "TAG_FAILURE_REASON",
    "unique_run_name",
    "owner_tags",
    "owner_is_alive",
    "mark_stale_runs_failed",
]

logger = logging.getLogger(__name__)

TAG_PID = "radlas.pid"
TAG_HOST = "radlas.host"
TAG_PID_START = "radlas.pid_start"
TAG_FAILURE_REASON = "radlas.failure_reason"


def unique_run_name(prefix: str) -> str:
    """``<prefix>-<YYYYmmdd-HHMMSS>-<8 hex>``, unique per job even when jobs start in the same second."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", prefix) or "run"
    return f"{clean}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _process_start_ticks(pid: int) -> str:
    """Start time of ``pid`` since boot in clock ticks (Linux ``/proc/<pid>/stat`` field 22), or ``""``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may contain spaces
    return fields[19] if len(fields) > 19 else ""


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming the process that owns a run (default: this process)."""
    pid = os.getpid() if pid is None else int(pid)
    return {TAG_PID: str(pid), TAG_HOST: socket.gethostname(), TAG_PID_START: _process_start_ticks(pid)}


def owner_is_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs.

    Args:
        tags: the run's tags.

    Returns:
        ``True``/``False``; ``None`` when it cannot be known (no owner tags, or another host).
    """
    if tags.get(TAG_HOST) != socket.gethostname() or not tags.get(TAG_PID, "").isdigit():
        return None
    pid = int(tags[TAG_PID])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    recorded_start = tags.get(TAG_PID_START, "")
    current_start = _process_start_ticks(pid)
    if recorded_start and current_start and recorded_start != current_start:
        return False  # the pid was recycled by a newer process
    return True


def mark_stale_runs_failed(client: Any, experiment_id: str) -> list[str]:
    """Mark ``RUNNING`` runs of ``experiment_id`` whose owner process is gone as ``FAILED``.

    Args:
        client: an ``mlflow.MlflowClient``.
        experiment_id: the experiment to scan.

    Returns:
        ids of the runs marked ``FAILED``.
    """
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000)
    marked = []
    for run in runs:
        tags = dict(run.data.tags)
        if owner_is_alive(tags) is not False:
            continue
        reason = f"owner process {tags[TAG_PID]} on {tags[TAG_HOST]} ended without closing the run"
        client.set_tag(run.info.run_id, TAG_FAILURE_REASON, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        logger.warning("MLflow run %s (%s) marked FAILED: %s", run.info.run_name, run.info.run_id, reason)
        marked.append(run.info.run_id)
    return marked
