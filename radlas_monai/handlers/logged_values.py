"""Engine outputs and metrics turned into values MLflow can log (scalars, uint8 images)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["is_scalar", "as_float", "default_loss_transform", "metric_scalars", "image_to_uint8"]


def is_scalar(value: Any) -> bool:
    """A Python/numpy number, or a tensor/array holding exactly one value."""
    if isinstance(value, (bool, int, float, np.number)):
        return True
    return hasattr(value, "numel") and value.numel() == 1 or isinstance(value, np.ndarray) and value.size == 1


def as_float(value: Any) -> float:
    """``float`` of a number or a one-element tensor/array."""
    return float(value.item() if hasattr(value, "item") else value)


def default_loss_transform(output: Any) -> dict[str, float]:
    """Loss terms of a training step's output, as ``{name: value}``.

    Handles MONAI's decollated output (a list of per-item dicts: the first item is used), a dict
    (every scalar entry whose key starts with ``"loss"``, plus each scalar of a nested ``"losses"``
    dict as ``loss_<name>``), and a bare scalar (``{"loss": value}``).

    Args:
        output: ``engine.state.output``.

    Returns:
        the loss terms; empty when none are found.
    """
    if isinstance(output, (list, tuple)) and output and isinstance(output[0], Mapping):
        output = output[0]
    if isinstance(output, Mapping):
        terms = {str(k): as_float(v) for k, v in output.items() if str(k).startswith("loss") and is_scalar(v)}
        nested = output.get("losses")
        if isinstance(nested, Mapping):
            terms.update({f"loss_{k}": as_float(v) for k, v in nested.items() if is_scalar(v)})
        return terms
    if output is not None and is_scalar(output):
        return {"loss": as_float(output)}
    return {}


def metric_scalars(prefix: str, values: Mapping[str, Any]) -> dict[str, float]:
    """Flatten metric values (scalars, 1D tensors/arrays, dicts) into ``{prefix + name: float}``."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(metric_scalars(f"{name}/", value))
        elif is_scalar(value):
            out[name] = as_float(value)
        elif hasattr(value, "tolist") or isinstance(value, (list, tuple)):
            flat = np.asarray(value.tolist() if hasattr(value, "tolist") else value, dtype=object).ravel()
            out.update({f"{name}/{i}": float(v) for i, v in enumerate(flat) if isinstance(v, (int, float))})
    return out


def image_to_uint8(image: Any) -> np.ndarray:
    """An image tensor/array as uint8 (H, W) or (H, W, C): [0, 1] floats scaled, other ranges stretched.

    Raises:
        ValueError: not (H, W), (C, H, W) or (H, W, C) after squeezing.
    """
    array = np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
    array = np.squeeze(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (H, W), (C, H, W) or (H, W, C), got {array.shape}")
    if array.dtype == np.uint8:
        return array
    array = np.nan_to_num(array.astype(np.float32))
    if array.min() < 0.0 or array.max() > 1.0:  # not in the project's [0, 1] convention: stretch
        span = float(array.max() - array.min()) or 1.0
        array = (array - array.min()) / span
    return np.round(array * 255.0).astype(np.uint8)
