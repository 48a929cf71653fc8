"""Tests for radlas_monai.networks.transformer: SDPA ViT blocks with MONAI's state-dict layout."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.transformer import SDPATransformerBlock, build_transformer_block, monai_blocks_available

MONAI_KEYS = {
    "mlp.linear1.weight", "mlp.linear1.bias", "mlp.linear2.weight", "mlp.linear2.bias",
    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "norm_cross_attn.weight", "norm_cross_attn.bias",
    "attn.qkv.weight", "attn.qkv.bias", "attn.out_proj.weight", "attn.out_proj.bias",
}  # fmt: skip


def _reference_block(block: SDPATransformerBlock, x: torch.Tensor, heads: int) -> torch.Tensor:
    """Explicit softmax(QK^T / sqrt(d)) V attention with MONAI's (qkv, heads, head_dim) packing."""
    b, n, d = x.shape
    hd = d // heads
    h = block.norm1(x)
    qkv = h @ block.attn.qkv.weight.t() + block.attn.qkv.bias
    qkv = qkv.reshape(b, n, 3, heads, hd)
    out = torch.zeros(b, n, heads, hd)
    for i in range(heads):
        q, k, v = qkv[:, :, 0, i], qkv[:, :, 1, i], qkv[:, :, 2, i]
        att = torch.softmax(q @ k.transpose(1, 2) / hd**0.5, dim=-1)
        out[:, :, i] = att @ v
    x = x + block.attn.out_proj(out.reshape(b, n, d))
    h = block.norm2(x)
    return x + block.mlp.linear2(torch.nn.functional.gelu(block.mlp.linear1(h)))


@pytest.mark.parametrize("hidden, heads, qkv_bias", [(24, 3, True), (32, 4, True), (16, 1, True)])
def test_sdpa_block_matches_explicit_attention(hidden: int, heads: int, qkv_bias: bool) -> None:
    torch.manual_seed(0)
    block = SDPATransformerBlock(hidden, 2 * hidden, heads, 0.0, qkv_bias).eval()
    x = torch.randn(2, 5, hidden)
    torch.testing.assert_close(block(x), _reference_block(block, x, heads), atol=1e-5, rtol=1e-5)


def test_state_dict_keys_match_monai_layout() -> None:
    assert set(build_transformer_block(24, 48, 3, qkv_bias=True, attention_impl="sdpa").state_dict()) == MONAI_KEYS


@pytest.mark.skipif(not monai_blocks_available(), reason="MONAI's TransformerBlock needs einops, not installed")
def test_monai_and_sdpa_blocks_are_interchangeable() -> None:
    torch.manual_seed(0)
    monai_block = build_transformer_block(24, 48, 3, qkv_bias=True, attention_impl="monai").eval()
    sdpa_block = build_transformer_block(24, 48, 3, qkv_bias=True, attention_impl="sdpa").eval()
    sdpa_block.load_state_dict(monai_block.state_dict())
    x = torch.randn(2, 7, 24)
    torch.testing.assert_close(sdpa_block(x), monai_block(x))


def test_attention_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    block = SDPATransformerBlock(16, 32, 2, dropout_rate=0.5).eval()
    x = torch.randn(1, 6, 16)
    torch.testing.assert_close(block(x), block(x))
    block.train()
    assert not torch.allclose(block(x), block(x))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attention_impl": "flash"}, "attention_impl"),
        ({"dropout_rate": 1.5}, "dropout_rate"),
        ({"hidden_size": 10, "num_heads": 3}, "divisible"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    args = {"hidden_size": 12, "mlp_dim": 24, "num_heads": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_transformer_block(**args)
