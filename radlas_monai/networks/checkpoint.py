"""Reading encoder weights out of RadLAS pretraining checkpoints.

A pretraining checkpoint is a state dict of :class:`~radlas_monai.networks.radlas.RadLAS` (keys
``encoder.*``, ``decoder.*``, ...), possibly wrapped by a trainer (``{"network": sd}``,
``{"state_dict": sd}``, ``{"model": sd}``, ``{"net": sd}``) and possibly saved from a DDP model
(``module.`` prefix). These helpers unwrap all of that and return the bare encoder state dict.
Files are read with ``torch.load(..., weights_only=True)`` only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import NamedTuple, Union

import torch
import torch.nn.functional as F

__all__ = [
    "StateDictLike",
    "EncoderLoadResult",
    "load_state_dict_file",
    "extract_encoder_state_dict",
    "resize_position_embeddings",
]

logger = logging.getLogger(__name__)

StateDictLike = Union[Mapping[str, torch.Tensor], str, os.PathLike]
WRAPPER_KEYS = ("network", "state_dict", "model", "net", "model_state_dict")
ENCODER_PREFIX = "encoder."
POS_EMBED_KEY = "patch_embed.position_embeddings"


class EncoderLoadResult(NamedTuple):
    """What :meth:`RadLASEncoder.load_from_pretrain` did not load (empty lists on a clean load)."""

    missing_keys: list[str]
    unexpected_keys: list[str]
    mismatched_keys: list[str]


def load_state_dict_file(path: str | os.PathLike) -> Mapping[str, object]:
    """Load a checkpoint file safely (``weights_only=True``, tensors mapped to CPU).

    Raises:
        CheckpointError: the file is missing, empty, truncated, corrupt or holds more than tensors and plain types
            (see :func:`radlas_monai.handlers.checkpoint_io.load_checkpoint`, the one loader of the project).
    """
    from radlas_monai.handlers.checkpoint_io import load_checkpoint

    return load_checkpoint(path, map_location="cpu")


def _unwrap(checkpoint: Mapping[str, object]) -> Mapping[str, object]:
    for key in WRAPPER_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            return inner
    return checkpoint


def extract_encoder_state_dict(state_dict_or_path: StateDictLike) -> dict[str, torch.Tensor]:
    """Return the encoder's own state dict from a RadLAS checkpoint, a bare encoder dict or a file.

    Args:
        state_dict_or_path: a state dict (full RadLAS, wrapped, DDP-prefixed or encoder-only) or the
            path of a file holding one.

    Returns:
        dict keyed like :class:`RadLASEncoder` (``patch_embed.*``, ``blocks.N.*``, ``norm.*``).

    Raises:
        TypeError: when the checkpoint is not a mapping of tensors.
    """
    raw = state_dict_or_path
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        raw = load_state_dict_file(state_dict_or_path)
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected a state dict (mapping of tensors), got {type(raw).__name__}")
    sd = _unwrap(raw)
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    if any(k.startswith(ENCODER_PREFIX) for k in sd):
        sd = {k[len(ENCODER_PREFIX) :]: v for k, v in sd.items() if k.startswith(ENCODER_PREFIX)}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"checkpoint entries are not tensors: {bad[:5]}")
    return dict(sd)


def resize_position_embeddings(pos_embed: torch.Tensor, new_grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically resample learnable ViT position embeddings ``(1, N, D)`` to ``new_grid``.

    The source grid must be square (``N`` a perfect square), as for every RadLAS preset trained on
    square images.

    Raises:
        ValueError: when ``pos_embed`` is not ``(1, N, D)`` with square ``N``.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"expected position embeddings of shape (1, N, D), got {tuple(pos_embed.shape)}")
    n, d = pos_embed.shape[1], pos_embed.shape[2]
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f"cannot resize position embeddings of a non-square grid (N={n})")
    grid = pos_embed.reshape(1, side, side, d).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    logger.info("resized position embeddings from %dx%d to %dx%d", side, side, *new_grid)
    return grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d).to(pos_embed.dtype)
