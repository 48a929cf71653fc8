"""Input and output conversions of the lesion synthesis transform (shapes, types, dtypes, spacings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_dst_type

__all__ = ["as_batch", "is_batched", "restore_outputs", "spacing_pair", "spacing_array"]


def is_batched(img: NdarrayOrTensor) -> bool:
    """Whether ``img`` is a ``(B, C, H, W)`` batch rather than one ``(C, H, W)`` image."""
    return len(img.shape) == 4


def as_batch(img: NdarrayOrTensor, like: torch.Tensor | None = None, name: str = "img") -> torch.Tensor:
    """A plain float32 ``(B, C, H, W)`` tensor (a view when ``img`` already is one) without gradient tracking.

    Args:
        img: ``(C, H, W)`` or ``(B, C, H, W)`` floating-point array or tensor (MetaTensor meta is dropped here).
        like: when given, ``img`` must match its ``(C, H, W)`` and have its batch size or 1; moved to its device.
        name: the argument's name for error messages.

    Returns:
        The batch.

    Raises:
        ValueError: for another shape, a non-float dtype or an unsupported type.
    """
    if not isinstance(img, (np.ndarray, torch.Tensor)):
        raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(img).__name__}")
    if len(img.shape) not in (3, 4):
        raise ValueError(f"{name} must be (C, H, W) or (B, C, H, W), got shape {tuple(img.shape)}")
    tensor = torch.as_tensor(img) if isinstance(img, np.ndarray) else img.as_subclass(torch.Tensor)
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point radiograph in [0, 1], got dtype {tensor.dtype}")
    tensor = tensor.detach()
    tensor = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
    if like is not None:
        tensor = tensor.to(like.device)
        if tensor.shape[1:] != like.shape[1:] or tensor.shape[0] not in (1, like.shape[0]):
            raise ValueError(f"{name} must be shaped like the image {tuple(like.shape[1:])}, got {tuple(tensor.shape)}")
    return tensor.to(torch.float32).contiguous()


def restore_outputs(
    img: NdarrayOrTensor, image: torch.Tensor, mask: torch.Tensor, family: torch.Tensor
) -> tuple[NdarrayOrTensor, NdarrayOrTensor, NdarrayOrTensor]:
    """Bring batched float32 results back to the input's shape, type, dtype, device (and MetaTensor meta).

    ``image`` takes the input's dtype; where ``mask == 0`` it is the input's own value (so a float64 input stays
    bit-exact outside the lesions). ``mask`` stays float32 and ``family`` uint8, both expanded to the input's
    channels.

    Args:
        img: the original input.
        image: ``(B, C, H, W)`` float32 corrupted batch.
        mask: ``(B, 1, H, W)`` float32 soft lesion mask.
        family: ``(B, 1, H, W)`` uint8 family map.

    Returns:
        ``(image, mask, family)`` like ``img``.
    """
    if not is_batched(img):
        image, mask, family = image[0], mask[0], family[0]
    if image.shape[-3] > 1:
        mask = mask.expand_as(image).contiguous()
        family = family.expand_as(image).contiguous()
    if isinstance(img, np.ndarray):
        if img.dtype != np.float32:
            source = torch.as_tensor(img)
            image = torch.where(mask > 0, image.to(source.dtype), source)
        return image.numpy(), mask.numpy(), family.numpy()
    plain = img.as_subclass(torch.Tensor)
    if plain.dtype != torch.float32:
        image = torch.where(mask > 0, image.to(plain.dtype), plain.detach())
    return (
        convert_to_dst_type(image, img)[0],
        convert_to_dst_type(mask, img, dtype=torch.float32)[0],
        convert_to_dst_type(family, img, dtype=torch.uint8)[0],
    )


def spacing_pair(spacing: float | Sequence[float] | np.ndarray | torch.Tensor) -> tuple[float, float]:
    """``(row, col)`` spacing from one value or a pair.

    Raises:
        ValueError: unless one or two positive values are given.
    """
    values = np.asarray(_numpy(spacing), dtype=np.float64).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or not np.all(values > 0):
        raise ValueError(f"spacing must be one positive value or a positive (row, col) pair, got {spacing}")
    return float(values[0]), float(values[1])


def spacing_array(spacing: Any, batch: int) -> np.ndarray:
    """``(B, 2)`` float64 spacing from one value, ``(row, col)`` or ``(B, 2)``.

    Raises:
        ValueError: for another shape or a non-positive value.
    """
    values = np.array(_numpy(spacing), dtype=np.float64)
    if values.size == 1:
        values = np.full((batch, 2), float(values.reshape(-1)[0]))
    elif values.shape == (2,):
        values = np.tile(values, (batch, 1))
    elif values.shape != (batch, 2):
        raise ValueError(f"spacing must be one value, (row, col) or ({batch}, 2), got shape {values.shape}")
    if not np.all(values > 0):
        raise ValueError(f"spacing must be positive, got {values.tolist()}")
    return values


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
