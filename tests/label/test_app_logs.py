"""Tests for radlas_monai.label.app_logs: the app's log lives in the label cache, never in the app folder."""

from __future__ import annotations

import logging
import logging.handlers

import pytest

from radlas_monai.label.app_logs import LAUNCHER_DIRS, add_log_file, label_log_file, move_app_logs


@pytest.fixture()
def launcher_logging(tmp_path):
    """What ``monailabel start_server --app <app>`` leaves: its four folders and two handlers on ``logs/app.log``."""
    app = tmp_path / "app"
    for name in LAUNCHER_DIRS:
        (app / name).mkdir(parents=True)
    (app / "main.py").write_text("")
    log_file = app / "logs" / "app.log"
    main = logging.handlers.RotatingFileHandler(log_file, maxBytes=1 << 20, backupCount=2, encoding="utf-8")
    task = logging.handlers.RotatingFileHandler(log_file, maxBytes=1 << 20, backupCount=2, encoding="utf-8")
    loggers = {"main": logging.getLogger("radlas_test.launcher"), "task": logging.getLogger("radlas_test.task_train")}
    for item, handler in zip(loggers.values(), (main, task)):
        item.addHandler(handler)
        item.setLevel(logging.INFO)
        item.propagate = False
    yield app, loggers
    for item, handler in zip(loggers.values(), (main, task)):
        item.removeHandler(handler)
        handler.close()


def test_launcher_logs_move_to_the_cache_and_its_empty_folders_go(launcher_logging, tmp_path):
    app, loggers = launcher_logging
    (app / "lib" / "keep.py").write_text("")  # a folder that holds something stays
    loggers["main"].info("written before the app started")
    target = tmp_path / "cache" / "logs" / "app.log"
    assert move_app_logs(app, target) == [(app / "logs" / "app.log").resolve()]
    loggers["main"].info("written by the app")
    loggers["task"].info("written by a task")
    assert sorted(p.name for p in app.iterdir()) == ["lib", "main.py"]
    lines = target.read_text().splitlines()
    assert lines == ["written before the app started", "written by the app", "written by a task"]


def test_moving_is_a_no_op_when_nothing_logs_into_the_app_folder(tmp_path):
    (tmp_path / "app").mkdir()
    assert move_app_logs(tmp_path / "app", tmp_path / "app.log") == []
    assert not (tmp_path / "app.log").exists()


def test_add_log_file_once_per_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RADLAS_LABEL_CACHE", str(tmp_path / "cache"))
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        assert add_log_file() == add_log_file() == label_log_file() == tmp_path / "cache" / "logs" / "app.log"
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        logging.getLogger("radlas_test.server").info("startup message")
        added[0].flush()
        assert "startup message" in label_log_file().read_text()
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
