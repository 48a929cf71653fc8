"""Tests for radlas_monai.networks.encoder (RadLASEncoder) and its checkpoint loading."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.encoder import RadLASEncoder, default_skip_indices
from radlas_monai.networks.presets import ENCODER_PRESETS, get_encoder_preset

pytestmark = pytest.mark.usefixtures("one_thread")


TINY_SMALL = {"hidden_size": 24, "num_layers": 4, "num_heads": 2, "mlp_dim": 48}


def _encoder(img_size: int = 32, seed: int = 0, **overrides: int) -> RadLASEncoder:
    torch.manual_seed(seed)  # the test owns the RNG, never the library
    return RadLASEncoder(img_size=img_size, **{**TINY_SMALL, **overrides}).eval()


# [preset, img_size, batch, expected (N, D)]
PRESET_CASES = [
    ["tiny", 224, 1, (196, 192)],
    ["tiny", 256, 2, (256, 192)],
    ["tiny", 512, 1, (1024, 192)],
    ["small", 256, 1, (256, 384)],
    ["base", 224, 1, (196, 768)],
]


@pytest.mark.parametrize("preset, img_size, batch, expected", PRESET_CASES)
def test_preset_output_shapes(preset: str, img_size: int, batch: int, expected: tuple[int, int]) -> None:
    torch.manual_seed(0)
    enc = RadLASEncoder.from_preset(preset, img_size=img_size).eval()
    assert enc.num_features == ENCODER_PRESETS[preset]["hidden_size"]
    assert enc.grid_size == (img_size // 16, img_size // 16)
    with torch.no_grad():
        tokens = enc.forward_features(torch.rand(batch, 1, img_size, img_size))
    assert tokens.shape == (batch, *expected)
    assert torch.isfinite(tokens).all()


def test_presets_are_the_documented_sizes() -> None:
    assert get_encoder_preset("tiny") == {"hidden_size": 192, "num_layers": 6, "num_heads": 3, "mlp_dim": 768}
    assert get_encoder_preset("small") == {"hidden_size": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536}
    assert get_encoder_preset("base") == {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072}
    with pytest.raises(ValueError, match="huge.*tiny"):
        get_encoder_preset("huge")


@pytest.mark.parametrize("layers, expected", [(12, (2, 5, 8)), (6, (1, 2, 4)), (4, (0, 1, 2))])
def test_default_skip_indices(layers: int, expected: tuple[int, ...]) -> None:
    assert default_skip_indices(layers) == expected


def test_feature_interface_is_consistent() -> None:
    enc = _encoder()
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        tokens, inter = enc.forward_intermediates(x, indices=(0, 3))
        assert torch.equal(tokens, enc.forward_features(x))
        torch.testing.assert_close(enc.forward_pooled(x), tokens.mean(1))
        # the last block's raw output, normalised, is the final token output
        torch.testing.assert_close(enc.norm(inter[1]), tokens)
        assert enc.tokens_to_grid(tokens).shape == (3, 24, 2, 2)
    assert [t.shape for t in inter] == [(3, 4, 24), (3, 4, 24)]


def test_tokens_are_row_major_over_the_image() -> None:
    enc = _encoder()
    x = torch.zeros(1, 1, 32, 32)
    x[..., 0:16, 16:32] = 1.0  # top-right patch: row 0, column 1 -> token 1
    emb = enc.patch_embed.patch_embeddings(x).flatten(2).transpose(1, 2)
    base = enc.patch_embed.patch_embeddings(torch.zeros_like(x)).flatten(2).transpose(1, 2)
    changed = (emb - base).abs().sum(-1)[0] > 0
    assert changed.tolist() == [False, True, False, False]


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 48, 32), (1, 3, 32, 32), (1, 32, 32)],
)
def test_bad_input_shape_names_the_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")):
        _encoder().forward_features(torch.rand(shape))


def test_img_size_must_be_a_multiple_of_the_patch() -> None:
    with pytest.raises(ValueError, match="multiple of patch_size"):
        RadLASEncoder(img_size=40, **TINY_SMALL)


def test_same_seed_same_weights_and_outputs() -> None:
    x = torch.rand(2, 1, 32, 32)
    a, b, c = _encoder(seed=7), _encoder(seed=7), _encoder(seed=8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))


def test_unused_cross_attention_norm_is_frozen_for_ddp() -> None:
    enc = _encoder()
    frozen = {n for n, p in enc.named_parameters() if not p.requires_grad}
    assert frozen == {f"blocks.{i}.norm_cross_attn.{w}" for i in range(4) for w in ("weight", "bias")}
    enc.forward_features(torch.rand(1, 1, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)


# ---------------------------------------------------------------- load_from_pretrain


def _full_radlas_state_dict(encoder: RadLASEncoder) -> dict[str, torch.Tensor]:
    sd = {f"encoder.{k}": v.clone() for k, v in encoder.state_dict().items()}
    sd["decoder.out.conv.conv.weight"] = torch.zeros(4, 8, 1, 1)  # other RadLAS parts are ignored
    sd["projector.mlp.0.weight"] = torch.zeros(3, 24)
    return sd


@pytest.mark.parametrize("wrap", ["bare", "full", "network", "ddp", "file"])
def test_load_from_pretrain_good(wrap: str, tmp_path) -> None:
    source, target = _encoder(seed=1), _encoder(seed=2)
    x = torch.rand(2, 1, 32, 32)
    full = _full_radlas_state_dict(source)
    payload = {
        "bare": source.state_dict(),
        "full": full,
        "network": {"network": full, "epoch": torch.tensor(3)},
        "ddp": {f"module.{k}": v for k, v in full.items()},
        "file": tmp_path / "pretrain.pt",
    }[wrap]
    if wrap == "file":
        torch.save({"network": full}, payload)
    result = target.load_from_pretrain(payload)
    assert result.missing_keys == result.unexpected_keys == result.mismatched_keys == []
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


def test_load_from_pretrain_missing_and_unexpected_keys() -> None:
    source = _encoder().state_dict()
    source.pop("norm.weight")
    source["blocks.9.mlp.linear1.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing keys \[norm.weight\].*unexpected keys \[blocks.9.mlp.linear1"):
        _encoder().load_from_pretrain(source)


def test_load_from_pretrain_shape_mismatch_names_both_shapes() -> None:
    sd = _encoder().state_dict()
    sd["norm.weight"] = torch.ones(32)
    with pytest.raises(RuntimeError, match=r"shape mismatches \[norm.weight \(checkpoint \(32,\) vs model \(24,\)\)\]"):
        _encoder().load_from_pretrain(sd)
    wider = _encoder(hidden_size=32, mlp_dim=64).state_dict()  # a different preset: long lists are shortened
    with pytest.raises(RuntimeError, match=r"shape mismatches \[.*\(\+\d+ more\)\]"):
        _encoder().load_from_pretrain(wider)


def test_load_from_pretrain_other_img_size() -> None:
    source = _encoder(img_size=32)
    with pytest.raises(RuntimeError, match="resize_pos_embed=True"):
        _encoder(img_size=64).load_from_pretrain(source.state_dict())
    target = _encoder(img_size=64)
    result = target.load_from_pretrain(source.state_dict(), resize_pos_embed=True)
    assert result == ([], [], [])
    torch.testing.assert_close(target.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    pos = target.patch_embed.position_embeddings
    assert pos.shape == (1, 16, 24)
    # a constant embedding stays constant under bicubic resampling
    flat = _encoder(img_size=32).state_dict()
    flat["patch_embed.position_embeddings"] = torch.ones(1, 4, 24)
    target.load_from_pretrain(flat, resize_pos_embed=True)
    torch.testing.assert_close(target.patch_embed.position_embeddings.data, torch.ones(1, 16, 24))


def test_load_from_pretrain_non_strict_loads_what_matches(caplog) -> None:
    source, target = _encoder(seed=1), _encoder(seed=2)
    sd = source.state_dict()
    sd.pop("norm.bias")
    before = target.norm.bias.clone()
    result = target.load_from_pretrain(sd, strict=False)
    assert result.missing_keys == ["norm.bias"]
    assert "missing keys [norm.bias]" in caplog.text
    torch.testing.assert_close(target.norm.weight, source.norm.weight)
    assert torch.equal(target.norm.bias, before)


@pytest.mark.parametrize(
    "content, reason",
    [(None, "does not exist"), (b"", "empty"), (b"PK\x03\x04 truncated zip", "")],
    ids=["missing", "zero-byte", "corrupt"],
)
def test_load_from_pretrain_bad_file_names_file_and_cause(tmp_path, content, reason) -> None:
    from radlas_monai.handlers.checkpoint_io import CheckpointError

    path = tmp_path / "nope.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="nope.pt") as caught:
        _encoder().load_from_pretrain(path)
    assert reason in caught.value.reason
