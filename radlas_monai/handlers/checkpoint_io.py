"""Checkpoint files: atomic writes, safe loads, and state dicts checked against the network.

- :func:`atomic_torch_save` writes to a temporary file in the target folder, flushes and
  ``fsync``-s it, ``os.replace``-s it over the target and ``fsync``-s the folder: a reader (or a
  job killed with SIGKILL mid-save) sees either the previous complete file or the new one.
- :func:`load_checkpoint` always loads with ``torch.load(..., weights_only=True)`` (tensors and
  plain Python types only, never arbitrary pickled code) and turns every failure into a
  :class:`CheckpointError` naming the file and the cause.
- :func:`load_network_state` loads a state dict into a network and, on a wrong architecture,
  raises :class:`StateDictMismatchError` listing missing, unexpected and wrong-shape keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "StateDictMismatchError",
    "atomic_torch_save",
    "load_checkpoint",
    "load_network_state",
    "load_network_weights",
    "file_sha256",
    "remove_stale_temp_files",
]

logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint file cannot be used.

    Args:
        path: the checkpoint file.
        reason: why, in words a user can act on.

    Attributes:
        path: the file, as a string.
        reason: the reason, without the path.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable with its (path, reason) signature
        return (type(self), (self.path, self.reason))


class StateDictMismatchError(CheckpointError):
    """A state dict does not fit the network (another architecture or size).

    Attributes:
        missing: network keys absent from the state dict.
        unexpected: state-dict keys the network does not have.
        mismatched: ``(key, checkpoint shape, network shape)`` for keys of another shape.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        reason: str,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[tuple[str, tuple, tuple]] = (),
    ) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        super().__init__(path, reason)

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.missing, self.unexpected, self.mismatched))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a partial file at ``path``.

    Args:
        obj: what to save (keep to state dicts and plain types so that it loads with
            ``weights_only=True``).
        path: the target file; its folder is created if needed.

    Returns:
        the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)
    return path


def remove_stale_temp_files(folder: str | os.PathLike, filename: str) -> int:
    """Delete temporary files a killed :func:`atomic_torch_save` left for ``filename`` in ``folder``."""
    removed = 0
    for tmp in Path(folder).glob(f".{filename}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def load_checkpoint(
    path: str | os.PathLike, expected_keys: Iterable[str] | None = None, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``), with errors that name the file and cause.

    Args:
        path: the ``.pt`` file.
        expected_keys: top-level keys the checkpoint must have (e.g. ``["network", "trainer"]``).
        map_location: passed to ``torch.load``.

    Returns:
        the checkpoint dict.

    Raises:
        CheckpointError: the file is missing, empty, truncated or corrupt, holds objects other
            than tensors and plain types, is not a dict, or lacks an expected key.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file does not exist" if not path.exists() else "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(path, "file is empty (0 bytes); the save that wrote it did not finish")
    is_zip = zipfile.is_zipfile(path)  # torch.save writes a zip archive; a torn write loses its directory
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not is_zip:
            raise CheckpointError(path, f"corrupt or truncated checkpoint ({size} bytes, not a zip archive)") from err
        reason = f"holds objects other than tensors and plain types; refused with weights_only=True ({err})"
        raise CheckpointError(path, reason) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, io.UnsupportedOperation) as err:
        raise CheckpointError(path, f"corrupt or truncated checkpoint ({size} bytes): {err}") from err
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(path, f"expected a dict of state dicts, got {type(checkpoint).__name__}")
    missing = [k for k in (expected_keys or ()) if k not in checkpoint]
    if missing:
        raise CheckpointError(path, f"missing keys {missing}; it has {sorted(map(str, checkpoint))}")
    return dict(checkpoint)


def _strip_prefix(state: Mapping[str, Any], network_keys: set[str], prefix: str = "module.") -> Mapping[str, Any]:
    """Drop a DataParallel/DDP ``module.`` prefix when every key has it and the network has none."""
    if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in network_keys):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _summarize(items: list, limit: int = 10) -> str:
    shown = ", ".join(map(str, items[:limit]))
    return f"{len(items)} [{shown}{', ...' if len(items) > limit else ''}]"


def load_network_state(
    network: torch.nn.Module,
    state_dict: Mapping[str, Any],
    strict: bool = True,
    path: str | os.PathLike = "<state dict>",
) -> None:
    """Load ``state_dict`` into ``network``, naming every key that does not fit.

    Args:
        network: the target network; a DataParallel / DistributedDataParallel wrapper is loaded through its
            ``module`` (checkpoints hold the unwrapped network, e.g. when a DDP job resumes).
        state_dict: its weights (a ``module.`` prefix from DataParallel/DDP is removed).
        strict: raise on missing or unexpected keys (wrong shapes always raise).
        path: the file the state came from, for the error message.

    Raises:
        StateDictMismatchError: listing missing, unexpected and mismatched-shape keys.
    """
    if isinstance(network, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        network = network.module
    own = network.state_dict()
    state = _strip_prefix(state_dict, set(own))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if mismatched or (strict and (missing or unexpected)):
        parts = []
        if missing:
            parts.append(f"missing keys {_summarize(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_summarize(unexpected)}")
        if mismatched:
            shapes = [f"{k}: checkpoint {c} vs network {n}" for k, c, n in mismatched]
            parts.append(f"shape mismatch {_summarize(shapes)}")
        reason = f"state dict does not fit {type(network).__name__}: " + "; ".join(parts)
        raise StateDictMismatchError(path, reason, missing, unexpected, mismatched)
    network.load_state_dict(state, strict=strict)


def load_network_weights(
    network: torch.nn.Module, path: str | os.PathLike, strict: bool = True, map_location: Any = "cpu"
) -> torch.nn.Module:
    """Load weights into ``network`` from ``model.pt`` (a bare state dict) or a full checkpoint.

    Args:
        network: the target network.
        path: ``model.pt`` / ``checkpoint_*.pt`` (its ``"network"`` entry is used).
        strict: see :func:`load_network_state`.
        map_location: passed to ``torch.load``.

    Returns:
        ``network``, for chaining in bundle configs.

    Raises:
        CheckpointError: unreadable file; StateDictMismatchError: wrong architecture.
    """
    checkpoint = load_checkpoint(path, map_location=map_location)
    state = checkpoint["network"] if isinstance(checkpoint.get("network"), Mapping) else checkpoint
    load_network_state(network, state, strict=strict, path=path)
    return network


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (the ``radlas.checkpoint_sha256`` tag)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
