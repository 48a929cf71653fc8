"""Where the MONAI Label app logs: ``app.log`` in the label cache, never inside the package.

MONAI Label's own launcher (``monailabel start_server --app <folder>``) creates ``model/``, ``lib/``, ``logs/`` and
``bin/`` in the app folder and logs to ``<folder>/logs/app.log``: inside this package when the app folder is
``radlas_monai/label`` of a checkout. When the app starts, :func:`move_app_logs` points those log files at
:func:`label_log_file` (what they already hold is appended there) and removes the folders the launcher left empty;
:func:`add_log_file` gives ``scripts/monailabel_server.py`` the same file. Both keep MONAI Label's rotation (10 MB,
10 backups).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
from pathlib import Path

from radlas_monai.label.studies import label_cache_dir

__all__ = ["LOG_FILE_NAME", "LAUNCHER_DIRS", "label_log_file", "add_log_file", "move_app_logs"]

logger = logging.getLogger(__name__)

LOG_FILE_NAME = "app.log"
#: Folders that ``monailabel start_server`` creates in the app folder (the RadLAS app uses none of them).
LAUNCHER_DIRS = ("model", "lib", "logs", "bin")
_MAX_BYTES = 10 << 20
_BACKUPS = 10
_FORMAT = "[%(asctime)s] [%(process)s] [%(threadName)s] [%(levelname)s] (%(name)s:%(lineno)d) - %(message)s"


def label_log_file() -> Path:
    """``<label cache>/logs/app.log`` (:func:`~radlas_monai.label.studies.label_cache_dir`)."""
    return label_cache_dir() / "logs" / LOG_FILE_NAME


def _file_handlers() -> list[logging.FileHandler]:
    """Every distinct file handler of the root logger and the named loggers."""
    loggers = [logging.getLogger(), *(item for item in logging.Logger.manager.loggerDict.values())]
    found: dict[int, logging.FileHandler] = {}
    for item in loggers:
        for handler in getattr(item, "handlers", []):
            if isinstance(handler, logging.FileHandler):
                found[id(handler)] = handler
    return list(found.values())


def add_log_file(path: str | os.PathLike | None = None, level: int = logging.INFO) -> Path:
    """Log the root logger's records to a rotating ``path`` as well (once per file).

    Args:
        path: the log file; ``None``: :func:`label_log_file`.
        level: the handler's level.

    Returns:
        The log file.
    """
    target = Path(path) if path is not None else label_log_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    if any(Path(h.baseFilename).resolve() == target.resolve() for h in _file_handlers()):
        return target
    handler = logging.handlers.RotatingFileHandler(target, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logging.getLogger().addHandler(handler)
    return target


def move_app_logs(app_dir: str | os.PathLike, target: str | os.PathLike | None = None) -> list[Path]:
    """Point the log files that ``monailabel start_server`` opened in ``<app_dir>/logs`` at ``target``.

    What they hold is appended to ``target`` and the files are deleted; the folders of :data:`LAUNCHER_DIRS` left
    empty in ``app_dir`` are removed.

    Args:
        app_dir: the app folder given to MONAI Label.
        target: the log file; ``None``: :func:`label_log_file`.

    Returns:
        The log files moved (an empty list when nothing logged into the app folder).
    """
    app_logs = (Path(app_dir) / "logs").resolve()
    target = Path(target) if target is not None else label_log_file()
    moved: list[Path] = []
    for handler in _file_handlers():
        source = Path(handler.baseFilename).resolve()
        if source.parent != app_logs:
            continue
        handler.acquire()
        try:
            if handler.stream is not None:
                handler.stream.close()
                handler.stream = None  # reopened at target by the next record
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                with source.open("rb") as old, target.open("ab") as new:
                    shutil.copyfileobj(old, new)
                source.unlink()
                moved.append(source)
            handler.baseFilename = os.fspath(target.resolve())
        finally:
            handler.release()
    for name in LAUNCHER_DIRS:
        folder = Path(app_dir) / name
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if moved:
        logger.info("log files moved out of the app folder %s: logging to %s", app_dir, target)
    return moved
