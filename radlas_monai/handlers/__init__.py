"""Ignite handlers for RadLAS bundles: robust MLflow tracking, image panels, atomic checkpoints.

Names are loaded on first use, so ``import radlas_monai.handlers`` stays cheap (MLflow, ignite and
Pillow are imported only by the handlers that need them):

- :mod:`~radlas_monai.handlers.tracking`: :class:`RadLASMLFlowHandler`
- :mod:`~radlas_monai.handlers.mlflow_store`: :func:`default_tracking_uri`,
  :func:`resolve_tracking_uri`, :func:`prepare_tracking_store`, :class:`TrackingStoreError`
- :mod:`~radlas_monai.handlers.image_log`: :class:`ImageLogHandler`, :func:`render_panel`
- :mod:`~radlas_monai.handlers.checkpoint`: :class:`AtomicCheckpointSaver`
- :mod:`~radlas_monai.handlers.checkpoint_io`: :func:`load_checkpoint`, :func:`load_network_weights`,
  :func:`atomic_torch_save`, :class:`CheckpointError`, :class:`StateDictMismatchError`

Resuming lives in :mod:`radlas_monai.engines.resume`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RadLASMLFlowHandler": "tracking",
    "default_loss_transform": "logged_values",
    "TrackingStoreError": "mlflow_store",
    "default_tracking_uri": "mlflow_store",
    "resolve_tracking_uri": "mlflow_store",
    "prepare_tracking_store": "mlflow_store",
    "ImageLogHandler": "image_log",
    "render_panel": "image_log",
    "AtomicCheckpointSaver": "checkpoint",
    "CheckpointError": "checkpoint_io",
    "StateDictMismatchError": "checkpoint_io",
    "atomic_torch_save": "checkpoint_io",
    "load_checkpoint": "checkpoint_io",
    "load_network_state": "checkpoint_io",
    "load_network_weights": "checkpoint_io",
    "flatten_params": "config_params",
    "config_hash": "config_params",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
