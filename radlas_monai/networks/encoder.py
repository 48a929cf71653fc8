"""The RadLAS image encoder: a 2D Vision Transformer built from MONAI blocks.

Patch embedding is MONAI's :class:`~monai.networks.blocks.PatchEmbeddingBlock` (conv, learnable
position embeddings); blocks are pre-norm transformer blocks with SDPA attention
(:func:`~radlas_monai.networks.transformer.build_transformer_block`); a final ``LayerNorm`` closes
the stack. State-dict keys are stable (``patch_embed.*``, ``blocks.N.*``, ``norm.*``) so that
downstream bundles load the encoder alone from a RadLAS pretraining checkpoint
(:meth:`RadLASEncoder.load_from_pretrain`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.blocks import PatchEmbeddingBlock
from monai.networks.layers import trunc_normal_
from monai.utils import ensure_tuple_rep

from radlas_monai.networks.checkpoint import (
    POS_EMBED_KEY,
    EncoderLoadResult,
    StateDictLike,
    extract_encoder_state_dict,
    resize_position_embeddings,
)
from radlas_monai.networks.presets import get_encoder_preset
from radlas_monai.networks.transformer import build_transformer_block

__all__ = ["RadLASEncoder", "default_skip_indices"]

logger = logging.getLogger(__name__)


def default_skip_indices(num_layers: int, num_skips: int = 3) -> tuple[int, ...]:
    """Block indices (0-based) whose outputs feed the decoder skips, evenly spaced in depth.

    For ``num_skips=3`` these are the blocks at 1/4, 2/4 and 3/4 of the depth (the 4/4 level is the
    final, normalised token output): 12 layers -> ``(2, 5, 8)``, 6 layers -> ``(1, 2, 4)``.

    Raises:
        ValueError: when ``num_layers`` is smaller than ``num_skips + 1``.
    """
    if num_layers < num_skips + 1:
        raise ValueError(f"need at least {num_skips + 1} transformer layers for {num_skips} skips, got {num_layers}")
    return tuple(math.ceil(num_layers * k / (num_skips + 1)) - 1 for k in range(1, num_skips + 1))


def _limited(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


class RadLASEncoder(nn.Module):
    """2D ViT encoder for single-channel radiographs, with a timm-like feature interface.

    Args:
        img_size: input size ``H`` (square) or ``(H, W)``; each a multiple of ``patch_size``.
        in_channels: image channels (1 for radiographs).
        patch_size: ViT patch size (16 for every preset).
        hidden_size: token width ``D``.
        num_layers: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_dim: MLP hidden width.
        dropout_rate: dropout in embeddings, attention and MLP.
        qkv_bias: bias on the ``qkv`` projection (True like timm's ViT).
        pos_embed_type: ``"learnable"`` or ``"sincos"`` (MONAI ``PatchEmbeddingBlock`` types).
        attention_impl: ``"auto"``, ``"monai"`` or ``"sdpa"``, see
            :func:`~radlas_monai.networks.transformer.build_transformer_block`.
        spatial_dims: must be 2.

    Example:
        >>> enc = RadLASEncoder.from_preset("tiny", img_size=256)
        >>> enc.forward_features(torch.zeros(2, 1, 256, 256)).shape
        torch.Size([2, 256, 192])
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 256,
        in_channels: int = 1,
        patch_size: int = 16,
        hidden_size: int = 192,
        num_layers: int = 6,
        num_heads: int = 3,
        mlp_dim: int = 768,
        dropout_rate: float = 0.0,
        qkv_bias: bool = True,
        pos_embed_type: str = "learnable",
        attention_impl: str = "auto",
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"RadLASEncoder is 2D only, got spatial_dims={spatial_dims}")
        size = tuple(int(s) for s in ensure_tuple_rep(img_size, 2))
        if any(s < patch_size or s % patch_size for s in size):
            raise ValueError(f"img_size {size} must be a multiple of patch_size {patch_size} in every dimension")
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
        self.img_size: tuple[int, int] = (size[0], size[1])
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.num_features = hidden_size
        self.num_layers = num_layers
        self.grid_size: tuple[int, int] = (size[0] // patch_size, size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.pos_embed_type = pos_embed_type
        self.patch_embed = PatchEmbeddingBlock(
            in_channels=in_channels,
            img_size=self.img_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_heads=num_heads,
            proj_type="conv",
            pos_embed_type=pos_embed_type,
            dropout_rate=dropout_rate,
            spatial_dims=2,
        )
        self.blocks = nn.ModuleList(
            build_transformer_block(hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias, attention_impl)
            for _ in range(num_layers)
        )
        for block in self.blocks:  # MONAI's unused cross-attention norm: frozen, so DDP needs no find_unused_parameters
            if isinstance(getattr(block, "norm_cross_attn", None), nn.LayerNorm):
                block.norm_cross_attn.requires_grad_(False)
        self.norm = nn.LayerNorm(hidden_size)
        self.skip_indices = default_skip_indices(num_layers) if num_layers >= 4 else ()
        self.blocks.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """timm ViT initialisation: truncated normal (std 0.02) linear weights, zero biases."""
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, mean=0.0, std=0.02, a=-2.0, b=2.0)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @classmethod
    def from_preset(cls, name: str, img_size: int | Sequence[int] = 256, **overrides: Any) -> RadLASEncoder:
        """Build the encoder of preset ``name`` (``tiny``/``small``/``base``), overriding any argument.

        Raises:
            ValueError: for an unknown preset name.
        """
        kwargs: dict[str, Any] = get_encoder_preset(name)
        kwargs.update(overrides)
        return cls(img_size=img_size, **kwargs)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing():  # shapes are symbolic while tracing
            return
        expected = (self.in_channels, *self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"RadLASEncoder expects images of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )

    def forward_intermediates(
        self, x: torch.Tensor, indices: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode ``x`` and keep the outputs of selected blocks for decoder skips.

        Args:
            x: images ``(B, C, H, W)`` with ``(H, W) == img_size``.
            indices: 0-based block indices to return; default :attr:`skip_indices` (1/4, 2/4, 3/4 depth).

        Returns:
            ``(tokens, intermediates)``: final normalised tokens ``(B, N, D)`` and a list of the raw
            (un-normalised) block outputs ``(B, N, D)``, in the order of ``indices``.

        Raises:
            ValueError: on an ill-shaped input or an index outside ``[0, num_layers)``.
        """
        self._check_input(x)
        wanted = tuple(self.skip_indices if indices is None else indices)
        if any(not 0 <= i < self.num_layers for i in wanted):
            raise ValueError(f"intermediate indices {wanted} must lie in [0, {self.num_layers})")
        kept: dict[int, torch.Tensor] = {}
        h = self.patch_embed(x)
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in wanted:
                kept[i] = h
        return self.norm(h), [kept[i] for i in wanted]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``(B, N, D)`` after the final norm, ``N = grid_size[0] * grid_size[1]`` (row-major)."""
        return self.forward_intermediates(x, indices=())[0]

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global feature ``(B, D)``: the mean of :meth:`forward_features` over tokens."""
        return self.forward_features(x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(x)

    def tokens_to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reshape tokens ``(B, N, D)`` to a feature map ``(B, D, gh, gw)``."""
        b, n, d = tokens.shape
        if n != self.num_patches:
            raise ValueError(f"expected {self.num_patches} tokens for grid {self.grid_size}, got {n}")
        return tokens.transpose(1, 2).reshape(b, d, *self.grid_size)

    def load_from_pretrain(
        self, state_dict_or_path: StateDictLike, strict: bool = True, resize_pos_embed: bool = False
    ) -> EncoderLoadResult:
        """Load encoder weights from a RadLAS pretraining checkpoint (or an encoder-only state dict).

        The ``encoder.`` prefix of a full :class:`RadLAS` state dict (and a DDP ``module.`` prefix, and
        trainer wrappers such as ``{"network": ...}``) are stripped; files are read with
        ``torch.load(..., weights_only=True)``.

        Args:
            state_dict_or_path: state dict or checkpoint path.
            strict: raise on any missing, unexpected or shape-mismatched key; when False, load what
                matches and log a warning naming the rest.
            resize_pos_embed: bicubically resample learnable position embeddings saved for another
                ``img_size`` instead of treating them as mismatched.

        Returns:
            :class:`EncoderLoadResult` naming the keys that were not loaded.

        Raises:
            RuntimeError: when ``strict`` and any key is missing, unexpected or of another shape.
            CheckpointError: when a path is given that is missing, empty, truncated or corrupt.
        """
        source = extract_encoder_state_dict(state_dict_or_path)
        own = self.state_dict()
        if resize_pos_embed and POS_EMBED_KEY in source and self.pos_embed_type == "learnable":
            if source[POS_EMBED_KEY].shape != own[POS_EMBED_KEY].shape:
                source[POS_EMBED_KEY] = resize_position_embeddings(source[POS_EMBED_KEY], self.grid_size)
        missing = sorted(set(own) - set(source))
        unexpected = sorted(set(source) - set(own))
        mismatched = sorted(
            f"{k} (checkpoint {tuple(source[k].shape)} vs model {tuple(own[k].shape)})"
            for k in set(own) & set(source)
            if source[k].shape != own[k].shape
        )
        result = EncoderLoadResult(missing, unexpected, mismatched)
        if missing or unexpected or mismatched:
            message = self._load_message(result)
            if strict:
                raise RuntimeError(message)
            logger.warning(message)
        loadable = {k: v for k, v in source.items() if k in own and v.shape == own[k].shape}
        self.load_state_dict(loadable, strict=False)
        return result

    @staticmethod
    def _load_message(result: EncoderLoadResult) -> str:
        parts = ["RadLASEncoder.load_from_pretrain: checkpoint does not match the encoder:"]
        if result.missing_keys:
            parts.append(f"missing keys [{_limited(result.missing_keys)}]")
        if result.unexpected_keys:
            parts.append(f"unexpected keys [{_limited(result.unexpected_keys)}]")
        if result.mismatched_keys:
            parts.append(f"shape mismatches [{_limited(result.mismatched_keys)}]")
            if any(k.startswith(POS_EMBED_KEY) for k in result.mismatched_keys):
                parts.append("(img_size differs from the checkpoint's; pass resize_pos_embed=True to resample)")
        return " ".join(parts)
