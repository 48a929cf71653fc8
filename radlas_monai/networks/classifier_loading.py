"""Strict loading of pretrained weights into the backbone of a :class:`~.classifier.RadLASClassifier`.

A classifier never starts from a silently random backbone: a missing, unreadable or mismatched checkpoint raises,
naming the file, the keys that do not fit and the command that creates the pretrain checkpoint. Training from
scratch is the explicit ``from_scratch=True`` of the classifier, never a fallback.

Accepted checkpoints (read with ``weights_only=True`` through
:func:`radlas_monai.handlers.checkpoint_io.load_checkpoint`):

- ``pretrained_parts="all"``: a full :class:`~radlas_monai.networks.radlas.RadLAS` state dict (the pretrain
  bundle's ``models/model.pt``) or a training checkpoint ``checkpoint_*.pt`` with a ``"network"`` entry; a DDP
  ``module.`` prefix is removed. Encoder, restoration decoder, grounding head and projector must all fit.
- ``pretrained_parts="encoder"``: the encoder alone, from any of the above, from a bare
  :class:`~radlas_monai.networks.encoder.RadLASEncoder` state dict, or from MONAI's ``ViTAutoEnc``
  (:func:`radlas_monai.baselines.build_vit_autoenc`: ``patch_embedding.*`` is renamed ``patch_embed.*`` and its
  transposed-convolution decoder is dropped). Decoder and grounding head keep their random initialisation, so
  the lesion map carries no pretrained evidence: use it to compare encoders, not to read evidence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from radlas_monai.handlers.checkpoint_io import (
    CheckpointError,
    StateDictMismatchError,
    load_checkpoint,
    load_network_state,
)

__all__ = [
    "PRETRAIN_COMMAND",
    "PRETRAINED_PARTS",
    "require_pretrained_checkpoint",
    "encoder_state_dict",
    "load_pretrained_backbone",
]

logger = logging.getLogger(__name__)

PRETRAIN_COMMAND = "python -m monai.bundle run --config_file bundles/pretrain/configs/train.json"
"""The command that creates the pretrain checkpoint ``bundles/pretrain/models/model.pt``."""

PRETRAINED_PARTS = ("all", "encoder")
_VIT_AUTOENC_PREFIX = "patch_embedding."
_VIT_AUTOENC_DECODER = ("conv3d_transpose.", "conv3d_transpose_1.")
_ENCODER_ROOTS = ("patch_embed.", "blocks.", "norm.")
_HINT = (
    f"create the pretrain checkpoint with `{PRETRAIN_COMMAND}` (or pass its path as pretrained_ckpt), "
    "or train from scratch explicitly with from_scratch=True"
)


def require_pretrained_checkpoint(path: str | os.PathLike | None, from_scratch: bool = False) -> str | None:
    """Fail fast, before any data is read, when the pretrain checkpoint a run needs is absent.

    Args:
        path: the checkpoint path (``None``/empty only allowed with ``from_scratch``).
        from_scratch: the run trains without pretraining; nothing is checked.

    Returns:
        ``path`` as a string (``None`` when training from scratch).

    Raises:
        CheckpointError: no path given, or no file at ``path``; the message names the command that creates it.
    """
    if from_scratch:
        return None
    if not path:
        raise CheckpointError("<pretrained_ckpt not set>", f"a pretrain checkpoint is required: {_HINT}")
    if not Path(path).is_file():
        raise CheckpointError(path, f"pretrain checkpoint not found; {_HINT}")
    return os.fspath(path)


def _network_state(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    state = checkpoint["network"] if isinstance(checkpoint.get("network"), Mapping) else checkpoint
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def encoder_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`RadLASEncoder` part of a RadLAS, bare-encoder or MONAI ``ViTAutoEnc`` state dict.

    Args:
        state: a network state dict (already unwrapped from a training checkpoint).

    Returns:
        The encoder's state, keyed ``patch_embed.*``, ``blocks.N.*``, ``norm.*``; keys of other parts of a full
        RadLAS (``decoder.*``, ...) and ``ViTAutoEnc``'s decoder are left out, any other key is kept (and is then
        reported as unexpected by the strict load).
    """
    if any(k.startswith("encoder.") for k in state):
        return {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if any(k.startswith(_VIT_AUTOENC_PREFIX) for k in state):
        converted = {}
        for key, value in state.items():
            if key.startswith(_VIT_AUTOENC_DECODER):
                continue
            if key.startswith(_VIT_AUTOENC_PREFIX):
                key = "patch_embed." + key[len(_VIT_AUTOENC_PREFIX) :]
            converted[key] = value
        return converted
    return dict(state)


def load_pretrained_backbone(backbone: torch.nn.Module, path: str | os.PathLike, parts: str = "all") -> None:
    """Load a pretrain checkpoint into a :class:`RadLAS` backbone, strictly.

    Args:
        backbone: the classifier's :class:`~radlas_monai.networks.radlas.RadLAS`.
        path: the checkpoint file.
        parts: ``"all"`` (encoder, decoder, grounding head, projector) or ``"encoder"`` (see the module docstring).

    Raises:
        ValueError: unknown ``parts``.
        CheckpointError: missing, empty, truncated or unsafe file (the message names the pretrain command).
        StateDictMismatchError: missing, unexpected or shape-mismatched keys, all named in the message.
    """
    if parts not in PRETRAINED_PARTS:
        raise ValueError(f"pretrained_parts must be one of {PRETRAINED_PARTS}, got {parts!r}")
    require_pretrained_checkpoint(path)
    checkpoint = load_checkpoint(path, map_location="cpu")
    state = _network_state(checkpoint)
    target = backbone if parts == "all" else backbone.encoder
    if parts == "encoder":
        state = encoder_state_dict(state)
    try:
        load_network_state(target, state, strict=True, path=path)
    except StateDictMismatchError as err:
        where = "RadLAS backbone" if parts == "all" else "RadLAS encoder"
        reason = (
            f"pretrain checkpoint does not fit the classifier's {where} (pretrained_parts={parts!r}; check "
            f"preset, img_size and backbone_kwargs): {err.reason}. "
            f"Expected a checkpoint written by `{PRETRAIN_COMMAND}`"
            + ("; an encoder-only checkpoint needs pretrained_parts='encoder'" if parts == "all" else "")
        )
        raise StateDictMismatchError(path, reason, err.missing, err.unexpected, err.mismatched) from None
    logger.info("loaded pretrained %s from %s", "RadLAS backbone" if parts == "all" else "encoder", path)
