"""Shared fixtures for the handler tests: a ready MLflow SQLite store per test, created once.

Creating an MLflow SQLite schema takes seconds; the session template is created once with the
production code (``prepare_tracking_store``) and copied for every test that needs a store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radlas_monai.handlers.mlflow_store import prepare_tracking_store

    folder = tmp_path_factory.mktemp("mlflow_template")
    prepare_tracking_store(f"sqlite:///{folder}/mlflow.db", "Default")
    return folder / "mlflow.db"


@pytest.fixture
def store_uri(template_store: Path, tmp_path: Path) -> str:
    """A fresh, schema-ready store in this test's tmp_path (experiments are created by the tests)."""
    target = tmp_path / "mlruns" / "mlflow.db"
    target.parent.mkdir(parents=True)
    shutil.copy(template_store, target)
    return f"sqlite:///{target}"
