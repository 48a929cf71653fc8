"""Where RadLAS runs are tracked, and how the MLflow store is created safely.

All three bundles (pretrain, finetune, localization) log into ONE store by default, so that a
pretrain -> finetune -> localization lineage can be browsed with a single ``mlflow ui``:

- default store: ``sqlite:///$RADLAS_MLFLOW_DIR/mlflow.db`` when the environment variable
  ``RADLAS_MLFLOW_DIR`` is set, else ``sqlite:///~/.radlas_monai/mlruns/mlflow.db``
  (see :func:`default_tracking_uri`);
- artifacts of an experiment live next to the database, in
  ``<folder of mlflow.db>/artifacts/<experiment name>/<run id>/artifacts`` (set as the experiment's
  ``artifact_location`` when RadLAS creates it);
- precedence (:func:`resolve_tracking_uri`): an explicit ``tracking_uri`` (the bundle config) wins
  over the ``MLFLOW_TRACKING_URI`` environment variable, which wins over the default.

MLflow creates and migrates a SQLite schema on first use; several processes doing that at once
corrupt each other's migrations. :func:`prepare_tracking_store` therefore creates (or upgrades) the
store once, under an inter-process ``fcntl.flock`` on ``<mlflow.db>.lock``, before training starts,
and raises :class:`TrackingStoreError` naming the URI when the store cannot be opened at all.

``mlflow`` is imported lazily inside the functions, so importing this module is cheap.

Example::

    uri = resolve_tracking_uri(None)  # env var or the RadLAS default
    experiment_id = prepare_tracking_store(uri, "radlas_pretrain")
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "RADLAS_MLFLOW_DIR_ENV",
    "DB_FILENAME",
    "TrackingStoreError",
    "default_tracking_uri",
    "resolve_tracking_uri",
    "sqlite_db_path",
    "experiment_artifact_location",
    "prepare_tracking_store",
    "set_sqlite_busy_timeout",
]

logger = logging.getLogger(__name__)

RADLAS_MLFLOW_DIR_ENV = "RADLAS_MLFLOW_DIR"
"""Environment variable naming the folder of the default store (``mlflow.db`` + ``artifacts/``)."""
DB_FILENAME = "mlflow.db"
_SQLITE_PREFIX = "sqlite:///"
_SQLITE_MAGIC = b"SQLite format 3\x00"

_T = TypeVar("_T")


class TrackingStoreError(RuntimeError):
    """The MLflow tracking store cannot be opened, created or upgraded.

    Args:
        uri: the tracking URI that failed.
        reason: why, in words a user can act on.

    Attributes:
        uri: the tracking URI.
        reason: the reason, without the URI.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"MLflow tracking store {uri!r}: {reason}")

    def __reduce__(self):  # picklable across processes with its (uri, reason) signature
        return (type(self), (self.uri, self.reason))


def default_tracking_uri() -> str:
    """The RadLAS default store shared by all bundles.

    Returns:
        ``sqlite:///<dir>/mlflow.db`` with ``<dir>`` = ``$RADLAS_MLFLOW_DIR`` if set, else
        ``~/.radlas_monai/mlruns`` (absolute, user-expanded).
    """
    folder = os.environ.get(RADLAS_MLFLOW_DIR_ENV) or os.path.join("~", ".radlas_monai", "mlruns")
    db_path = Path(folder).expanduser().resolve() / DB_FILENAME
    return _SQLITE_PREFIX + db_path.as_posix()  # POSIX: sqlite:////abs/path, Windows: sqlite:///C:/path


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """Pick the tracking URI: explicit argument > ``MLFLOW_TRACKING_URI`` > :func:`default_tracking_uri`.

    Args:
        tracking_uri: an explicit URI (e.g. the bundle's ``tracking_uri``); ``None`` or ``""`` to
            fall back to the environment variable, then to the RadLAS default.

    Returns:
        the URI to use.

    Raises:
        ValueError: for a plain path or ``file://`` URI (MLflow's file store is no longer supported;
            MONAI 1.6 rejects it too).
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("file:") or "://" not in uri:
        raise ValueError(
            f"tracking_uri={uri!r} is a file store, which MLflow no longer supports; "
            f"use a SQLite URI such as 'sqlite:////abs/path/{DB_FILENAME}' or an http(s) server URI"
        )
    return uri


def sqlite_db_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or ``None`` for other stores or in-memory SQLite."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    path = uri[len(_SQLITE_PREFIX) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def experiment_artifact_location(uri: str, experiment_name: str) -> str | None:
    """Artifact location given to a new experiment: ``<db folder>/artifacts/<experiment name>``.

    Args:
        uri: the tracking URI.
        experiment_name: the experiment's name (characters other than letters, digits, ``._-``
            become ``_`` in the folder name).

    Returns:
        a ``file://`` URI for SQLite stores; ``None`` (MLflow decides) for other stores.
    """
    db_path = sqlite_db_path(uri)
    if db_path is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", experiment_name) or "experiment"
    return (db_path.parent.resolve() / "artifacts" / folder).as_uri()


@contextlib.contextmanager
def _exclusive_file_lock(lock_path: Path, uri: str, timeout_s: float) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``lock_path`` (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # Windows: MLflow serialises its own table creation there
        logger.debug("fcntl is unavailable; creating %s without an inter-process lock", uri)
        yield
        return
    try:
        handle = open(lock_path, "a+b")  # noqa: SIM115 -- closed in finally
    except OSError as err:
        raise TrackingStoreError(uri, f"cannot create the lock file {lock_path}: {err}") from err
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as err:
                if time.monotonic() > deadline:
                    raise TrackingStoreError(
                        uri, f"another process held {lock_path} for more than {timeout_s:.0f} s"
                    ) from err
                time.sleep(0.05)
        yield
    finally:
        handle.close()  # closing the descriptor releases the flock


def _check_sqlite_file(uri: str, db_path: Path) -> None:
    """Fail fast, with the cause, when the SQLite file or its folder cannot be used."""
    folder = db_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrackingStoreError(uri, f"cannot create the store folder {folder}: {err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingStoreError(uri, f"the store folder {folder} is not writable")
    if db_path.is_dir():
        raise TrackingStoreError(uri, f"{db_path} is a directory, not a SQLite database file")
    if not db_path.exists() or db_path.stat().st_size == 0:
        return
    if not os.access(db_path, os.R_OK | os.W_OK):
        raise TrackingStoreError(uri, f"the database file {db_path} is not readable and writable")
    with open(db_path, "rb") as handle:
        header = handle.read(len(_SQLITE_MAGIC))
    if header != _SQLITE_MAGIC:
        raise TrackingStoreError(uri, f"{db_path} is not a SQLite database (corrupt or another file type)")
    try:
        with contextlib.closing(sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        raise TrackingStoreError(uri, f"{db_path} cannot be read as a SQLite database: {err}") from err


def _retry_while_locked(fn: Callable[[], _T], uri: str, timeout_s: float) -> _T:
    """Call ``fn`` and retry while SQLite reports a locked database, up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except Exception as err:
            if "locked" not in str(err).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _open_client(uri: str, db_path: Path | None) -> Any:
    """Create an ``MlflowClient``; upgrade an out-of-date SQLite schema once (with a backup)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=uri)
    except MlflowException as err:
        if db_path is None or "out-of-date database schema" not in str(err):
            raise
    import mlflow.store.db.utils as db_utils
    import sqlalchemy

    backup = db_path.with_name(f"{db_path.name}.bak-{time.strftime('%Y%m%d_%H%M%S')}")
    shutil.copy2(db_path, backup)
    logger.warning("upgrading the MLflow schema of %s (backup at %s)", db_path, backup)
    engine = sqlalchemy.create_engine(uri)
    try:
        db_utils._upgrade_db(engine)  # what `mlflow db upgrade <uri>` runs
    finally:
        engine.dispose()
    return MlflowClient(tracking_uri=uri)


def _get_or_create_experiment(client: Any, uri: str, experiment_name: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        location = experiment_artifact_location(uri, experiment_name)
        try:
            return str(client.create_experiment(experiment_name, artifact_location=location))
        except MlflowException as err:  # created meanwhile by a process that does not take our lock
            if "RESOURCE_ALREADY_EXISTS" not in str(err) and "already exists" not in str(err):
                raise
            experiment = client.get_experiment_by_name(experiment_name)
    if experiment.lifecycle_stage != "active":
        raise TrackingStoreError(
            uri,
            f"experiment {experiment_name!r} (id {experiment.experiment_id}) is deleted; restore it with "
            f"'mlflow experiments restore --experiment-id {experiment.experiment_id}' or choose another name",
        )
    return str(experiment.experiment_id)


def prepare_tracking_store(
    tracking_uri: str | None = None, experiment_name: str = "radlas", timeout_s: float = 120.0
) -> str:
    """Create or upgrade the tracking store once, safely across processes, and get the experiment.

    For SQLite stores the folder is created, the file is checked, and the schema creation/upgrade
    plus the experiment creation run under an exclusive ``fcntl.flock`` on ``<mlflow.db>.lock``,
    so any number of jobs may start at once against a new store. Call it before training.

    Args:
        tracking_uri: the store; resolved with :func:`resolve_tracking_uri`.
        experiment_name: experiment to get or create (a new one gets
            :func:`experiment_artifact_location` as its artifact location).
        timeout_s: how long to wait for the inter-process lock or a locked database.

    Returns:
        the experiment id.

    Raises:
        TrackingStoreError: naming the URI and the cause when the store cannot be opened at all
            (unwritable or uncreatable folder, corrupt database file, deleted experiment, server
            unreachable, lock held too long).
    """
    uri = resolve_tracking_uri(tracking_uri)
    db_path = sqlite_db_path(uri)
    lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if db_path is not None:
        _check_sqlite_file(uri, db_path)
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 -- slow import, kept outside the lock

        lock = _exclusive_file_lock(db_path.with_name(db_path.name + ".lock"), uri, timeout_s)
    with lock:
        try:
            client = _retry_while_locked(lambda: _open_client(uri, db_path), uri, timeout_s)
            experiment_id = _retry_while_locked(
                lambda: _get_or_create_experiment(client, uri, experiment_name), uri, timeout_s
            )
        except TrackingStoreError:
            raise
        except Exception as err:
            raise TrackingStoreError(uri, f"cannot open the store ({type(err).__name__}: {err})") from err
    logger.info("MLflow store %s ready, experiment %r has id %s", uri, experiment_name, experiment_id)
    return experiment_id


_BUSY_TIMEOUT_MS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BUSY_PRAGMA = re.compile(r"PRAGMA\s+busy_timeout\s*=\s*\d+", re.IGNORECASE)


def _rewrite_busy_timeout(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
    timeout_ms = _BUSY_TIMEOUT_MS.get(conn.engine)
    if timeout_ms is not None and statement.lstrip().upper().startswith("PRAGMA"):
        statement = _BUSY_PRAGMA.sub(f"PRAGMA busy_timeout = {int(timeout_ms)}", statement)
    return statement, parameters


def set_sqlite_busy_timeout(client: Any, timeout_ms: int) -> bool:
    """Shorten how long this process waits on a locked SQLite store (MLflow's own wait is 20 s).

    MLflow sets ``PRAGMA busy_timeout = 20000`` on every session, so a locked database stalls each
    call for 20 s. This rewrites that pragma on the SQLAlchemy engine MLflow caches for the
    client's store; it affects every MLflow client of this store in this process.

    Args:
        client: an ``MlflowClient`` of a SQLite store.
        timeout_ms: the wait in milliseconds.

    Returns:
        ``True`` when applied; ``False`` (and nothing changed) for non-SQLite stores or an MLflow
        version whose internals differ.
    """
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is None or not str(getattr(engine, "url", "")).startswith("sqlite"):
        return False
    from sqlalchemy import event

    if engine not in _BUSY_TIMEOUT_MS:
        event.listen(engine, "before_cursor_execute", _rewrite_busy_timeout, retval=True)
    _BUSY_TIMEOUT_MS[engine] = int(timeout_ms)
    return True
