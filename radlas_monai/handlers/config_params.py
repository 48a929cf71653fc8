"""Executed configs as MLflow params, and a stable config hash for checkpoints.

MLflow stores params as short strings under restricted keys. :func:`flatten_params` turns a nested
bundle config into ``{"train.optimizer.lr": "0.0001", ...}`` within MLflow's limits: keys use only
``[A-Za-z0-9_./ -]`` and at most 250 characters, values at most ``max_value_length`` characters
(500 by default: the limit of older MLflow servers; newer ones allow 6000), at most ``max_params``
entries. The full config is always logged as a file artifact as well, so nothing is lost by
truncation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ConfigLike", "load_config", "config_hash", "flatten_params", "sanitize_key"]

logger = logging.getLogger(__name__)

ConfigLike = Mapping[str, Any] | str | os.PathLike | Sequence[str | os.PathLike]
"""A config as a mapping, a JSON/YAML file, or several files merged in order (later keys win)."""

MAX_KEY_LENGTH = 250
_BAD_KEY_CHARS = re.compile(r"[^\w./ -]")


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        content = yaml.safe_load(text)
    else:
        content = json.loads(text)
    if not isinstance(content, Mapping):
        raise ValueError(f"config file {path} must hold a mapping at the top level, got {type(content).__name__}")
    return dict(content)


def load_config(config: ConfigLike | None) -> tuple[dict[str, Any], list[Path]]:
    """Read a config given as a mapping, a file, or a list of files.

    Args:
        config: a mapping; a ``.json``/``.yaml``/``.yml`` path; or a sequence of paths merged at the
            top level in order; ``None`` for no config.

    Returns:
        ``(config dict, files it came from)``; the list is empty for a mapping or ``None``.

    Raises:
        FileNotFoundError: a named file does not exist.
        ValueError: a file does not hold a mapping.
    """
    if config is None:
        return {}, []
    if isinstance(config, Mapping):
        return dict(config), []
    paths = [Path(config)] if isinstance(config, (str, os.PathLike)) else [Path(p) for p in config]
    merged: dict[str, Any] = {}
    for path in paths:
        merged.update(_read_config_file(path))
    return merged, paths


def config_hash(config: ConfigLike | None) -> str:
    """SHA-256 (hex) of the config's canonical JSON (sorted keys), independent of file formatting."""
    content, _ = load_config(config)
    canonical = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sanitize_key(key: str) -> str:
    """Make ``key`` a valid MLflow param/metric key (``[A-Za-z0-9_./ -]``, no empty path parts, <= 250)."""
    clean = _BAD_KEY_CHARS.sub("_", str(key))
    parts = [p for p in clean.split("/") if p not in ("", ".", "..")]
    clean = "/".join(parts) or "_"
    if len(clean) > MAX_KEY_LENGTH:
        digest = hashlib.sha1(clean.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
        clean = clean[: MAX_KEY_LENGTH - 9] + "~" + digest
    return clean


def _truncate(text: str, max_length: int) -> str:
    if len(text) <= max_length:
        return text
    marker = f"...[{len(text)} chars]"
    return text[: max(0, max_length - len(marker))] + marker


def _walk(node: Any, prefix: str, out: list[tuple[str, Any]]) -> None:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            _walk(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(node, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in node):
        for index, value in enumerate(node):
            _walk(value, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        out.append((prefix or "value", node))


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def flatten_params(config: Mapping[str, Any], max_value_length: int = 500, max_params: int = 1000) -> dict[str, str]:
    """Flatten a nested config into MLflow params.

    Nested mappings and lists of mappings/lists become dotted keys (``train.handlers.0._target_``);
    lists of scalars stay one JSON value. Over-long values end with ``...[N chars]``.

    Args:
        config: the (nested) config.
        max_value_length: longest value kept, in characters.
        max_params: at most this many params (in the config's order); the rest are dropped with
            one warning, as the full config is logged as an artifact.

    Returns:
        ``{key: value}`` with sanitized keys and string values.

    Raises:
        ValueError: ``max_value_length`` or ``max_params`` is not positive.
    """
    if max_value_length < 16 or max_params < 1:
        raise ValueError(f"need max_value_length >= 16 and max_params >= 1, got {max_value_length}, {max_params}")
    items: list[tuple[str, Any]] = []
    _walk(config, "", items)
    params: dict[str, str] = {}
    for key, value in items:
        params.setdefault(sanitize_key(key), _truncate(_to_text(value), max_value_length))
    if len(params) > max_params:
        logger.warning(
            "config has %d params, MLflow gets the first %d; the full config is in the run's artifacts",
            len(params),
            max_params,
        )
        params = dict(list(params.items())[:max_params])
    return params
