"""Write datalists as JSON (rebasing paths) and load one split with paths resolved."""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from radlas_monai.data.datalist._constants import PATH_KEYS, SPLIT_KEYS

logger = logging.getLogger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"datalist value of type {type(value).__name__} is not JSON serializable: {value!r}")


def _rebase(item: dict, root: Path, json_dir: Path) -> dict:
    """Rewrite relative paths from ``root`` to ``json_dir``; absolute when the two share only the file-system root."""
    unrelated = os.path.commonpath([root, json_dir]) == root.anchor

    def moved(value: Any) -> Any:
        if isinstance(value, list):
            return [moved(v) for v in value] if all(isinstance(v, str | os.PathLike) for v in value) else value
        if not isinstance(value, str | os.PathLike) or os.path.isabs(value):
            return value
        target = os.path.normpath(root / value)
        return Path(target if unrelated else os.path.relpath(target, json_dir)).as_posix()

    for key in (*PATH_KEYS, "label"):
        if key in item:
            item[key] = moved(item[key])
    return item


def write_datalist(datalist: dict, path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write a datalist as pretty JSON, atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        datalist: the datalist dictionary (see the module docstring); it is not modified.
        path: destination ``.json``; parent folders are created.
        root: the folder the relative paths of ``datalist`` are relative to (the dataset root of a builder);
            when given and different from the JSON's folder, relative ``image`` / ``mask`` / ``lung_mask``
            paths are rewritten relative to the JSON's folder (absolute when the two folders share nothing
            but the file-system root). ``None``: paths are written unchanged.

    Returns:
        The written path.

    Raises:
        ValueError: ``datalist`` is not a dict, a split is not a list, or an item lacks ``"image"``.
    """
    if not isinstance(datalist, dict):
        raise ValueError(f"write_datalist: expected a dict, got {type(datalist).__name__}")
    data = copy.deepcopy(datalist)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    json_dir = path.parent.resolve()
    for key in SPLIT_KEYS:
        split_items = data.get(key, [])
        if not isinstance(split_items, list):
            raise ValueError(f"write_datalist: split {key!r} must be a list, got {type(split_items).__name__}")
        for index, item in enumerate(split_items):
            if not isinstance(item, dict) or "image" not in item:
                raise ValueError(f"write_datalist: {key}[{index}] is not an item with an 'image' key: {item!r}")
            if root is not None and Path(root).resolve() != json_dir:
                _rebase(item, Path(root).resolve(), json_dir)
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise
    logger.info("wrote %s (%s)", path, ", ".join(f"{k}: {len(data.get(k, []))}" for k in SPLIT_KEYS))
    return path


def load_datalist(path: str | os.PathLike, split: str = "training") -> list[dict]:
    """Load one split of a datalist with :func:`monai.data.load_decathlon_datalist`, paths made absolute.

    ``base_dir`` is the JSON's folder. Path keys (``image``, ``mask``, ``lung_mask``, a string ``label``) are
    always joined with it; every other key (``patient``, ``findings``, ...) is returned exactly as written --
    MONAI's loader would otherwise turn a patient id into a path whenever a folder of that name exists next
    to the JSON. An empty split returns ``[]`` (MONAI's loader fails on an empty ``"test"`` list).

    Args:
        path: the datalist JSON.
        split: ``"training"``, ``"validation"``, ``"test"`` or any other list key of the file.

    Returns:
        The items of the split.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the split is absent (the message names the file and its available splits) or is not a list.
    """
    from monai.data import load_decathlon_datalist

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_datalist: no datalist file at {path}")
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    available = (
        [k for k, v in raw.items() if isinstance(v, list) and k != "class_names"] if isinstance(raw, dict) else []
    )
    if not isinstance(raw, dict) or split not in raw:
        raise ValueError(f"load_datalist: {path} has no split {split!r}; available splits: {available}")
    if not isinstance(raw[split], list):
        raise ValueError(f"load_datalist: {path}: {split!r} is a {type(raw[split]).__name__}, not a list of items")
    if not raw[split]:
        return []
    base_dir = path.parent.resolve()
    loaded = load_decathlon_datalist(path, is_segmentation=True, data_list_key=split, base_dir=base_dir)
    originals = [item if isinstance(item, dict) else {"image": item} for item in raw[split]]
    if len(loaded) != len(originals):  # pragma: no cover - MONAI returns one dict per entry
        raise ValueError(f"load_datalist: {path}: MONAI returned {len(loaded)} items for {len(originals)} entries")

    def resolved(value: Any) -> Any:
        if isinstance(value, str):
            return os.path.normpath(os.path.join(base_dir, value))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [resolved(v) for v in value]  # multi-channel input: a list of files
        return value

    return [{k: resolved(v) if k in (*PATH_KEYS, "label") else v for k, v in item.items()} for item in originals]
