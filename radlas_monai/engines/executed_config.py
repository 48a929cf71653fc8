"""The config a bundle run actually executed: its config files plus the ``monai.bundle`` command-line overrides.

A bundle config cannot reference its own parser, so the MLflow handler gets the executed config from here: the
raw (unresolved) content of the config files with every ``--id value`` override of the current
``python -m monai.bundle run ...`` command applied, which is what MONAI's own ``save_execute_config`` records.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["executed_config", "command_line_overrides"]

# keyword arguments of ``monai.bundle run`` that are not config overrides
_RUN_ARGUMENTS = {
    "config_file",
    "meta_file",
    "logging_file",
    "args_file",
    "run_id",
    "init_id",
    "final_id",
    "tracking",
    "workflow_name",
    "workflow_type",
    "properties_path",
}


def _is_bundle_command(argv: Sequence[str]) -> bool:
    entry = argv[0].replace(os.sep, "/") if argv else ""
    return entry.endswith("monai/bundle/__main__.py") and len(argv) > 1 and argv[1] in ("run", "run_workflow")


def command_line_overrides(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``--id value`` / ``--id=value`` pairs of a ``python -m monai.bundle run`` command line.

    Args:
        argv: the command line; ``sys.argv`` by default. Anything that is not a ``monai.bundle run`` command line
            (a test runner, a notebook) has no overrides.

    Returns:
        ``{config id: value}`` with values parsed as ``fire`` parses them (numbers, booleans, lists, strings).
    """
    argv = list(sys.argv if argv is None else argv)
    if not _is_bundle_command(argv):
        return {}
    from fire.parser import DefaultParseValue

    overrides: dict[str, Any] = {}
    tokens = argv[2:]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("--"):
            continue
        key, sep, value = token[2:].partition("=")
        if not sep:
            if i < len(tokens) and not tokens[i].startswith("--"):
                value = tokens[i]
                i += 1
            else:
                value = "True"
        if key and key not in _RUN_ARGUMENTS:
            overrides[key] = DefaultParseValue(value)
    return overrides


def executed_config(
    config_files: str | os.PathLike | Sequence[str | os.PathLike], argv: Sequence[str] | None = None
) -> dict:
    """The raw config content of ``config_files`` with the command line's overrides applied.

    Args:
        config_files: the bundle's config file, or files merged in order (``train.json`` + ``multi_gpu_train.json``).
        argv: the command line; ``sys.argv`` by default.

    Returns:
        The executed config as a plain dict (expressions unresolved, as in the files).
    """
    from monai.bundle import ConfigParser

    files = (
        [os.fspath(config_files)]
        if isinstance(config_files, (str, os.PathLike))
        else [os.fspath(f) for f in config_files]
    )
    parser = ConfigParser(ConfigParser.load_config_files(files))
    parser.update(command_line_overrides(argv))
    return parser.get()
