"""Pre-norm ViT transformer blocks with scaled-dot-product attention (SDPA).

:func:`build_transformer_block` returns MONAI's :class:`monai.networks.blocks.TransformerBlock`
(``use_flash_attention=True``, i.e. :func:`torch.nn.functional.scaled_dot_product_attention`) when
MONAI can build it, which needs the optional ``einops`` package. Without ``einops`` it returns
:class:`SDPATransformerBlock`, a drop-in twin with the *same* state-dict keys (``norm1``,
``attn.qkv``, ``attn.out_proj``, ``norm2``, ``mlp.linear1``, ``mlp.linear2``, ``norm_cross_attn``)
and the same arithmetic, so checkpoints move freely between the two implementations.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import MLPBlock
from monai.utils import optional_import

__all__ = ["SDPASelfAttention", "SDPATransformerBlock", "build_transformer_block", "monai_blocks_available"]

logger = logging.getLogger(__name__)

ATTENTION_IMPLS = ("auto", "monai", "sdpa")


def monai_blocks_available() -> bool:
    """Whether MONAI's ``TransformerBlock`` can be built here (it needs ``einops``)."""
    return bool(optional_import("einops.layers.torch", name="Rearrange")[1])


class SDPASelfAttention(nn.Module):
    """Multi-head self-attention with MONAI ``SABlock``'s parameter layout and SDPA kernels.

    Parameters: ``qkv`` (``Linear(D, 3 D)``, packed as ``(qkv, heads, head_dim)`` like MONAI) and
    ``out_proj`` (``Linear(D, D)``). Attention dropout is applied only in training mode.

    Args:
        hidden_size: token width ``D``.
        num_heads: number of heads; must divide ``hidden_size``.
        dropout_rate: attention-weight and output dropout probability.
        qkv_bias: add a bias to the ``qkv`` projection.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout_rate: float = 0.0, qkv_bias: bool = False) -> None:
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dim_head = hidden_size // num_heads
        self.scale = self.dim_head**-0.5
        self.dropout_rate = dropout_rate
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.drop_output = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over tokens ``x`` of shape ``(B, N, D)``; returns ``(B, N, D)``."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.dim_head).permute(2, 0, 3, 1, 4)
        dropout_p = self.dropout_rate if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=dropout_p, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, n, d)
        return self.drop_output(self.out_proj(out))


class SDPATransformerBlock(nn.Module):
    """Pre-norm transformer block, state-dict compatible with MONAI's ``TransformerBlock``.

    ``x = x + attn(norm1(x)); x = x + mlp(norm2(x))`` (Dosovitskiy et al., "An Image is Worth 16x16
    Words", ICLR 2021). ``norm_cross_attn`` is unused, as in MONAI without cross-attention; it exists
    only so that both implementations share state-dict keys.

    Args:
        hidden_size: token width ``D``.
        mlp_dim: hidden width of the MLP.
        num_heads: number of attention heads.
        dropout_rate: dropout probability in attention and MLP.
        qkv_bias: add a bias to the ``qkv`` projection.
    """

    def __init__(
        self, hidden_size: int, mlp_dim: int, num_heads: int, dropout_rate: float = 0.0, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        self.mlp = MLPBlock(hidden_size, mlp_dim, dropout_rate)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.attn = SDPASelfAttention(hidden_size, num_heads, dropout_rate, qkv_bias)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.norm_cross_attn = nn.LayerNorm(hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform tokens ``x`` of shape ``(B, N, D)``; returns ``(B, N, D)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def build_transformer_block(
    hidden_size: int,
    mlp_dim: int,
    num_heads: int,
    dropout_rate: float = 0.0,
    qkv_bias: bool = False,
    attention_impl: str = "auto",
) -> nn.Module:
    """Build one pre-norm ViT block using SDPA attention.

    Args:
        hidden_size: token width ``D``.
        mlp_dim: hidden width of the MLP.
        num_heads: number of attention heads.
        dropout_rate: dropout probability in attention and MLP, in ``[0, 1]``.
        qkv_bias: add a bias to the ``qkv`` projection.
        attention_impl: ``"monai"`` (MONAI ``TransformerBlock`` with ``use_flash_attention=True``; needs
            ``einops``), ``"sdpa"`` (:class:`SDPATransformerBlock`) or ``"auto"`` (``"monai"`` when
            available, else ``"sdpa"``). Both have identical state-dict keys and arithmetic; note that
            MONAI 1.6's SDPA path keeps attention dropout on in eval mode when ``dropout_rate > 0``.

    Returns:
        the block, mapping ``(B, N, D)`` to ``(B, N, D)``.

    Raises:
        ValueError: for an unknown ``attention_impl``, a ``dropout_rate`` outside ``[0, 1]`` or a
            ``hidden_size`` not divisible by ``num_heads``.
        ImportError: ``attention_impl="monai"`` without ``einops`` installed.
    """
    if attention_impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {attention_impl!r}")
    if not 0.0 <= dropout_rate <= 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1], got {dropout_rate}")
    if hidden_size % num_heads != 0:
        raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
    use_monai = attention_impl == "monai" or (attention_impl == "auto" and monai_blocks_available())
    if use_monai:
        if not monai_blocks_available():
            raise ImportError("attention_impl='monai' needs the 'einops' package (MONAI's SABlock uses it)")
        from monai.networks.blocks import TransformerBlock

        return TransformerBlock(
            hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias=qkv_bias, use_flash_attention=True
        )
    return SDPATransformerBlock(hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias)
