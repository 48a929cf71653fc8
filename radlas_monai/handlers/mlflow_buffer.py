"""A guarded, buffering writer for one MLflow run: tracking errors never stop training.

Every MLflow call of :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler` goes through
:class:`BufferedMlflowWriter`. Metrics, params, tags and artifacts are queued in memory first and
flushed in batches; when a flush fails (``sqlite3.OperationalError: database is locked``, a
``MlflowException``, a server that is down, ...) the entries stay queued, ONE warning per kind of
failure is logged, and the flush is retried at a later log call (at most every
``retry_interval_s``), at every epoch end and at completion. Retrying is idempotent: MLflow ignores
a metric logged twice with the same key, value, timestamp and step, and a param logged twice with
the same value.

While a guarded call runs, MLflow's own ``"SQLAlchemy database error"`` traceback (logged at ERROR
by ``mlflow.store.db.utils`` for every locked call) is filtered out on that one logger, so a lock
produces one readable warning instead of a traceback per iteration.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from radlas_monai.handlers.config_params import sanitize_key

__all__ = ["BufferedMlflowWriter"]

logger = logging.getLogger(__name__)

_CHUNK = 1000  # MLflow's MAX_METRICS_PER_BATCH / MAX_ENTITIES_PER_BATCH
_PARAM_CHUNK = 100  # MLflow's MAX_PARAMS_TAGS_PER_BATCH


class _DropMlflowDbErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


@contextlib.contextmanager
def _quiet_mlflow_db_errors() -> Iterator[None]:
    mlflow_logger = logging.getLogger("mlflow.store.db.utils")
    scoped_filter = _DropMlflowDbErrors()
    mlflow_logger.addFilter(scoped_filter)
    try:
        yield
    finally:
        mlflow_logger.removeFilter(scoped_filter)


def _is_permanent(err: Exception | None) -> bool:
    """An error that retrying cannot fix (invalid key/value, changed param value)."""
    return getattr(err, "error_code", None) in ("INVALID_PARAMETER_VALUE", "INVALID_STATE")


def _failure_kind(operation: str, err: Exception) -> str:
    text = str(err).lower()
    cause = "database is locked" if "locked" in text else getattr(err, "error_code", "") or ""
    return f"{operation}: {type(err).__name__} {cause}".strip()


class BufferedMlflowWriter:
    """Queue and flush everything logged to one MLflow run; never raise on a tracking failure.

    Args:
        client: an ``mlflow.MlflowClient``.
        experiment_id: experiment of the run to create.
        run_name: name of the run to create (created at the first successful flush).
        run_tags: tags set when the run is created.
        retry_interval_s: after a failure, ordinary log calls do not retry before this many
            seconds (epoch ends and completion always retry).
        max_buffered_metrics: at most this many metrics are kept while the store is unreachable;
            beyond it the oldest are dropped with a warning.

    Attributes:
        run_id: the run's id once created, else ``None``.
        artifact_uri: the run's artifact root once created, else ``None``.
    """

    def __init__(
        self,
        client: Any,
        experiment_id: str,
        run_name: str,
        run_tags: Mapping[str, str] | None = None,
        retry_interval_s: float = 5.0,
        max_buffered_metrics: int = 200_000,
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run_name = run_name
        self.run_tags = dict(run_tags or {})
        self.retry_interval_s = float(retry_interval_s)
        self.run_id: str | None = None
        self.artifact_uri: str | None = None
        self._metrics: collections.deque = collections.deque(maxlen=max_buffered_metrics)
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._artifacts: list[tuple[str, str | None]] = []
        self._warned: set[str] = set()
        self._last_failure: float | None = None
        self._dropped = 0

    # ------------------------------------------------------------------ queueing
    def log_metrics(self, metrics: Mapping[str, Any], step: int, flush: bool = True) -> None:
        """Queue scalar metrics at ``step`` (non-numeric values are skipped) and try to flush."""
        timestamp = int(time.time() * 1000)
        for key, value in metrics.items():
            try:
                number = float(value.item() if hasattr(value, "item") else value)
            except (TypeError, ValueError):
                logger.debug("metric %r is not a scalar (%s); skipped", key, type(value).__name__)
                continue
            if len(self._metrics) == self._metrics.maxlen:
                self._dropped += 1
            self._metrics.append((sanitize_key(key), number, timestamp, int(step)))
        if self._dropped and "dropped" not in self._warned:
            self._warned.add("dropped")
            logger.warning("MLflow metric buffer is full (%d); dropping the oldest metrics", self._metrics.maxlen)
        if flush:
            self.flush()

    def log_params(self, params: Mapping[str, str]) -> None:
        """Queue params (values already strings within MLflow's limits)."""
        self._params.update({sanitize_key(k): str(v) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Queue run tags."""
        self._tags.update({str(k): str(v) for k, v in tags.items()})

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Queue a local file to copy into the run's artifacts (under ``artifact_path``)."""
        self._artifacts.append((os.fspath(local_path), artifact_path))

    @property
    def pending(self) -> dict[str, int]:
        """How many entries of each kind wait to be flushed."""
        return {
            "metrics": len(self._metrics),
            "params": len(self._params),
            "tags": len(self._tags),
            "artifacts": len(self._artifacts),
            "run": int(self.run_id is None),
        }

    # ------------------------------------------------------------------ flushing
    def guarded(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """Run one MLflow call, never raising.

        Args:
            operation: what the call does, for the log message.
            fn: the MLflow call; ``args``/``kwargs`` are passed to it.

        Returns:
            ``(True, result)``, or ``(False, exception)`` after logging it (a warning the first time
            this kind of failure happens, DEBUG afterwards).
        """
        try:
            with _quiet_mlflow_db_errors():
                return True, fn(*args, **kwargs)
        except Exception as err:  # a tracking failure must never stop training
            self._last_failure = time.monotonic()
            kind = _failure_kind(operation, err)
            level = logging.DEBUG if kind in self._warned else logging.WARNING
            self._warned.add(kind)
            consequence = (
                "the rejected entries are dropped"
                if _is_permanent(err)
                else f"training continues, {len(self._metrics)} metrics stay buffered and are retried later"
            )
            logger.log(
                level,
                "MLflow %s failed (%s: %s); %s (further failures of this kind are logged at DEBUG)",
                operation,
                type(err).__name__,
                str(err).splitlines()[0][:300] if str(err) else "",
                consequence,
            )
            return False, err

    def _create_run(self) -> bool:
        ok, run = self.guarded(
            "create_run",
            self.client.create_run,
            experiment_id=self.experiment_id,
            run_name=self.run_name,
            tags=self.run_tags,
        )
        if ok:
            self.run_id = run.info.run_id
            self.artifact_uri = run.info.artifact_uri
            logger.info("MLflow run %r started (id %s)", self.run_name, self.run_id)
        return ok

    def _log_batch(self, metrics: list, params: list, tags: list) -> bool:
        """Send one batch; an invalid entry (rejected for good) is dropped so it cannot block the rest."""
        from mlflow.entities import Metric, Param, RunTag

        def send(m: list, p: list, t: list) -> tuple[bool, Any]:
            return self.guarded(
                "log_batch",
                self.client.log_batch,
                run_id=self.run_id,
                metrics=[Metric(*entry) for entry in m],
                params=[Param(*entry) for entry in p],
                tags=[RunTag(*entry) for entry in t],
            )

        ok, err = send(metrics, params, tags)
        if ok or not _is_permanent(err):
            return ok
        self._last_failure = None  # not a store outage: deliver the valid entries one by one
        for kind, entries in (("metric", metrics), ("param", params), ("tag", tags)):
            for entry in entries:
                single = {"metric": ([entry], [], []), "param": ([], [entry], []), "tag": ([], [], [entry])}[kind]
                ok, err = send(*single)
                if not ok and _is_permanent(err):
                    self._last_failure = None
                    logger.warning("MLflow rejected %s %r (%s); dropped", kind, entry[0], str(err).splitlines()[0])
                elif not ok:
                    return False
        return True

    def _flush_batches(self) -> bool:
        while self._params or self._tags:
            params = list(self._params.items())[:_PARAM_CHUNK]
            tags = list(self._tags.items())[:_PARAM_CHUNK]
            if not self._log_batch([], params, tags):
                return False
            for key, _ in params:
                self._params.pop(key, None)
            for key, _ in tags:
                self._tags.pop(key, None)
        while self._metrics:
            chunk = [self._metrics[i] for i in range(min(_CHUNK, len(self._metrics)))]
            if not self._log_batch(chunk, [], []):
                return False
            for _ in chunk:
                self._metrics.popleft()
        return True

    def _upload(self, local_path: str, artifact_path: str | None) -> None:
        if not os.path.isfile(local_path):
            logger.warning("artifact %s does not exist; not logged to MLflow", local_path)
            return
        if self.artifact_uri:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            get_artifact_repository(self.artifact_uri).log_artifact(local_path, artifact_path)
        else:
            self.client.log_artifact(self.run_id, local_path, artifact_path)

    def _flush_artifacts(self) -> bool:
        while self._artifacts:
            local_path, artifact_path = self._artifacts[0]
            ok, _ = self.guarded("log_artifact", self._upload, local_path, artifact_path)
            if not ok:
                return False
            self._artifacts.pop(0)
        return True

    def flush(self, force: bool = False) -> bool:
        """Try to write everything queued (creating the run first if needed).

        Args:
            force: retry now even if the last failure is younger than ``retry_interval_s``.

        Returns:
            ``True`` when nothing is left queued.
        """
        if not force and self._last_failure is not None:
            if time.monotonic() - self._last_failure < self.retry_interval_s:
                return False
        failing_before = self._last_failure is not None
        if self.run_id is None and not self._create_run():
            return False
        done = self._flush_batches() and self._flush_artifacts()
        if done and failing_before:
            self._last_failure = None
            logger.info("MLflow store reachable again; buffered entries of run %s are flushed", self.run_id)
        return done

    def flush_until(self, timeout_s: float, poll_s: float = 0.5) -> bool:
        """Retry :meth:`flush` until it succeeds or ``timeout_s`` passes (used at completion)."""
        deadline = time.monotonic() + timeout_s
        while not self.flush(force=True):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

    def terminate(self, status: str) -> bool:
        """End the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        if self.run_id is None:
            return False
        ok, _ = self.guarded("set_terminated", self.client.set_terminated, self.run_id, status)
        return ok

    def dump_pending(self, path: str | os.PathLike, status: str | None = None) -> Path:
        """Write whatever could not be flushed to a JSON file, so nothing is silently lost.

        Args:
            path: the JSON file to write.
            status: the run status that could not be recorded, if any.

        Returns:
            the path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "run_name": self.run_name,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "status": status,
            "run_tags": self.run_tags,
            "metrics": [{"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in self._metrics],
            "params": self._params,
            "tags": self._tags,
            "artifacts": [{"local_path": p, "artifact_path": a} for p, a in self._artifacts],
        }
        path.write_text(json.dumps(record, indent=1))
        return path
