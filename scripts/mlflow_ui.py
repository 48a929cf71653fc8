"""Start the MLflow UI on the RadLAS tracking store, listening on 127.0.0.1 unless told otherwise.

Usage::

    python scripts/mlflow_ui.py                       # http://127.0.0.1:5000, the default store
    python scripts/mlflow_ui.py --port 5001 --tracking_uri sqlite:////data/mlruns/mlflow.db
    python scripts/mlflow_ui.py --host 0.0.0.0 --allow_remote True   # explicit opt-in, warns: no authentication

Equivalent to ``mlflow ui --backend-store-uri <store> --host 127.0.0.1 --port 5000`` with the store resolved as the
bundles resolve it (``--tracking_uri`` > ``MLFLOW_TRACKING_URI`` > ``$RADLAS_MLFLOW_DIR`` > ``~/.radlas_monai/mlruns``).
A non-loopback ``--host`` is refused unless ``--allow_remote True`` is given.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys

import fire

from radlas_monai.handlers.mlflow_store import prepare_tracking_store, resolve_tracking_uri
from radlas_monai.utils.bind import RemoteBindError, check_bind_address


def mlflow_ui_command(host: str, port: int, tracking_uri: str, workers: int = 1) -> list[str]:
    """The ``mlflow ui`` command line (run with this Python's ``mlflow`` module)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def main(
    host: str = "127.0.0.1",
    port: int = 5000,
    tracking_uri: str | None = None,
    allow_remote: bool = False,
    workers: int = 1,
    dry_run: bool = False,
) -> None:
    """Start the MLflow UI (replaces this process).

    Args:
        host: bind address; loopback by default.
        port: TCP port.
        tracking_uri: the store; resolved like the bundles' ``tracking_uri``.
        allow_remote: explicit opt-in to bind a non-loopback address (the UI has no authentication).
        workers: server worker processes (one is plenty for a single user and starts fastest).
        dry_run: print the command instead of running it.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_bind_address(str(host), service="MLflow UI", allow_remote=bool(allow_remote), authenticated=False)
    except RemoteBindError as error:
        sys.exit(f"error: {error}")
    uri = resolve_tracking_uri(tracking_uri)
    command = mlflow_ui_command(str(host), int(port), uri, int(workers))
    print(shlex.join(command), flush=True)
    if dry_run:
        return
    prepare_tracking_store(uri)  # creates the store on first use, under the same lock the bundles take
    os.execv(command[0], command)


if __name__ == "__main__":
    fire.Fire(main)
