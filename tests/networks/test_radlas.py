"""Tests for radlas_monai.networks.radlas: the RadLAS network, its output and the lesion-map wrapper."""

from __future__ import annotations

import warnings

import pytest
import torch

from radlas_monai.networks.encoder import RadLASEncoder
from radlas_monai.networks.grounding import fixed_contrast
from radlas_monai.networks.pooling import lesion_weighted_pooling, token_lesion_weights
from radlas_monai.networks.radlas import RadLAS, RadLASLesionMap, RadLASOutput

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = 64  # 4 x 4 tokens: fast, and every stage still runs


def _net(seed: int = 0, **kwargs) -> RadLAS:
    torch.manual_seed(seed)  # the test owns the RNG, never the library
    net = RadLAS(**{"img_size": SMALL, **kwargs})
    last = net.decoder.unet.final_conv if net.restorer_kind == "conv" else net.decoder.out.conv.conv
    torch.nn.init.normal_(last.weight, std=0.05)  # leave the identity initialisation so every path is exercised
    return net


def _images(batch: int = 2, size: int = SMALL, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 1, size, size, generator=g)
    mask = torch.zeros_like(image)
    mask[0, :, 8:24, 16:40] = 1.0
    return image, mask


# [preset, img_size, batch, (N, D)]
SHAPE_CASES = [
    ["tiny", 256, 2, (256, 192)],
    ["tiny", 224, 1, (196, 192)],
    ["tiny", 512, 1, (1024, 192)],
    ["small", 256, 1, (256, 384)],
    ["base", 224, 1, (196, 768)],
]


@pytest.mark.parametrize("preset, size, batch, tokens", SHAPE_CASES)
def test_output_shapes(preset: str, size: int, batch: int, tokens: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = RadLAS(preset=preset, img_size=size, embed_dim=32).eval()
    image = torch.rand(batch, 1, size, size)
    with torch.no_grad():
        out = net(image)
    assert isinstance(out, RadLASOutput)
    n, d = tokens
    for name in ("restored", "grounding_logits", "lesion_map"):
        assert getattr(out, name).shape == (batch, 1, size, size), name
    assert out.tokens.shape == (batch, n, d) and out.grid_size == (size // 16, size // 16)
    for name in ("global_feature", "lesion_feature", "normal_feature"):
        assert getattr(out, name).shape == (batch, d), name
    for name in ("global_embedding", "lesion_embedding", "normal_embedding"):
        assert getattr(out, name).shape == (batch, 32), name
    assert out.token_embeddings.shape == (batch, n, 32) and out.lesion_token_weight.shape == (batch, n)
    assert 0 <= float(out.restored.min()) and float(out.restored.max()) <= 1
    assert 0 <= float(out.lesion_map.min()) and float(out.lesion_map.max()) <= 1


def test_untrained_restorer_is_the_identity() -> None:
    torch.manual_seed(0)
    net = RadLAS(img_size=SMALL).eval()
    image, _ = _images()
    with torch.no_grad():
        out = net(image)
    assert torch.equal(out.restored, image)
    torch.testing.assert_close(out.lesion_map, torch.sigmoid(out.grounding_logits))


@pytest.mark.parametrize("restorer, skips", [["conv", ()], ["vit", (1, 2, 4)]])
def test_stages_compose_to_forward(restorer: str, skips: tuple) -> None:
    net = _net(restorer=restorer, grounding="unet" if restorer == "conv" else "light").eval()
    image, _ = _images()
    with torch.no_grad():
        out = net(image)
        tokens, inter = net.encode(image)
        restored = net.restore(image, tokens, inter)
        logits, lmap = net.ground(image, restored)
        lesion, normal, weight = net.pool(tokens, lmap)
        torch.testing.assert_close(out.restored, restored)
        torch.testing.assert_close(out.lesion_map, lmap)
        torch.testing.assert_close(out.lesion_feature, lesion)
        torch.testing.assert_close(out.global_embedding, net.project(tokens.mean(1)))
        torch.testing.assert_close(out.lesion_embedding, net.project(lesion))
        torch.testing.assert_close(out.normal_embedding, net.project(normal))
        torch.testing.assert_close(out.token_embeddings, net.project(tokens))
        torch.testing.assert_close(out.lesion_token_weight, weight)
        torch.testing.assert_close(net.predict_lesion_map(image), lmap)
        torch.testing.assert_close(net.restore(image), restored)  # encodes by itself when given no tokens
    assert net.skip_indices == skips


def test_teacher_forcing_pools_under_the_given_mask() -> None:
    net = _net().eval()
    image, mask = _images()
    with torch.no_grad():
        out = net(image, pool_map=mask)
    lesion, normal, _ = lesion_weighted_pooling(out.tokens, mask, (4, 4))
    torch.testing.assert_close(out.lesion_feature, lesion)
    torch.testing.assert_close(out.normal_feature, normal)
    torch.testing.assert_close(out.lesion_token_weight, token_lesion_weights(mask, (4, 4)))
    assert torch.equal(out.lesion_feature[1], torch.zeros_like(out.lesion_feature[1]))  # empty mask


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("detach_pool_map", [True, False])
def test_task_two_reaches_the_grounding_head_only_without_detach(detach_pool_map: bool) -> None:
    net = _net(detach_pool_map=detach_pool_map)
    image, _ = _images()
    net(image).lesion_embedding.sum().backward()
    assert _grad_norm(net.encoder) > 0
    assert (_grad_norm(net.grounding_head) > 0) is (not detach_pool_map)


@pytest.mark.parametrize("detach_restored", [True, False])
def test_grounding_loss_reaches_the_decoder_only_without_detach(detach_restored: bool) -> None:
    net = _net(grounding_detach_restored=detach_restored)
    image, _ = _images()
    net(image).grounding_logits.sum().backward()
    assert _grad_norm(net.grounding_head) > 0
    assert (_grad_norm(net.decoder) > 0) is (not detach_restored)


def test_without_grounding_head_the_map_is_the_fixed_contrast() -> None:
    net = _net(grounding_head=False, smooth=1.0, contrast_scale=0.2).eval()
    image, _ = _images()
    with torch.no_grad():
        out = net(image)
    assert out.grounding_logits is None and net.grounding_head is None
    torch.testing.assert_close(out.lesion_map, fixed_contrast(image, out.restored, smooth=1.0, contrast_scale=0.2))


def test_pool_source_contrast() -> None:
    net = _net(pool_source="contrast").eval()
    image, _ = _images()
    with torch.no_grad():
        out = net(image)
    contrast = fixed_contrast(image, out.restored, smooth=net.smooth, contrast_scale=net.contrast_scale)
    torch.testing.assert_close(out.lesion_token_weight, token_lesion_weights(contrast, (4, 4)))


def test_built_from_a_bundle_config() -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser(
        {
            "network_def": {
                "_target_": "radlas_monai.networks.RadLAS",
                "preset": "tiny",
                "img_size": SMALL,
                "embed_dim": 16,
            }
        }
    )
    net = parser.get_parsed_content("network_def")
    assert isinstance(net, RadLAS) and net.embed_dim == 16 and net.img_size == (SMALL, SMALL)


def test_runs_under_bf16_autocast() -> None:
    net = _net()
    image, mask = _images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(image, pool_map=mask)
        loss = (out.restored.float() - image).abs().mean() + out.grounding_logits.float().mean()
        loss = loss + out.lesion_embedding.float().square().mean() + out.token_embeddings.float().mean()
    loss.backward()
    lesion_map = out.lesion_map.detach()
    assert lesion_map.shape == image.shape and 0 <= float(lesion_map.min()) and float(lesion_map.max()) <= 1
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_lesion_map_wrapper_traces() -> None:
    net = _net().eval()
    wrapper = RadLASLesionMap(net).eval()
    image, _ = _images(batch=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(wrapper, image)
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    other, _ = _images(batch=3, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(traced(other), wrapper(other))
        assert traced(other).shape == (3, 1, SMALL, SMALL)


def test_same_seed_same_output() -> None:
    image, mask = _images()
    with torch.no_grad():
        a, b, c = (_net(seed=s).eval()(image, pool_map=mask) for s in (3, 3, 4))
    for name in ("restored", "lesion_map", "global_embedding", "token_embeddings"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.global_embedding, c.global_embedding)


def test_encoder_loads_from_a_radlas_checkpoint(tmp_path) -> None:
    net = _net().eval()
    path = tmp_path / "pretrain.pt"
    torch.save(net.state_dict(), path)
    torch.manual_seed(99)
    encoder = RadLASEncoder.from_preset("tiny", img_size=SMALL).eval()
    assert encoder.load_from_pretrain(path) == ([], [], [])
    image, _ = _images()
    with torch.no_grad():
        torch.testing.assert_close(encoder(image), net(image).tokens)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pool_source": "mask"}, "pool_source"),
        ({"contrast_weight": 2.0}, "contrast_weight"),
        ({"preset": "huge"}, "huge"),
        ({"num_layers": 3, "restorer": "vit", "grounding": "light"}, "at least 4 transformer layers"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RadLAS(img_size=SMALL, **kwargs)


def test_bad_inputs_name_shapes() -> None:
    net = _net().eval()
    image, mask = _images()
    with pytest.raises(
        ValueError, match=r"\(B, 1, 64, 64\) or larger with the same aspect ratio, got \(2, 1, 32, 32\)"
    ):
        net(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"pool_map \(2, 1, 32, 32\) must match image \(2, 1, 64, 64\)"):
        net(image, pool_map=mask[..., :32, :32])


def test_non_square_images() -> None:
    torch.manual_seed(0)
    net = RadLAS(img_size=(64, 48), embed_dim=8).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 1, 64, 48))
    assert out.restored.shape == out.lesion_map.shape == (1, 1, 64, 48)
    assert out.grid_size == (4, 3) and out.token_embeddings.shape == (1, 12, 8)


def test_conv_path_runs_at_full_resolution_while_the_vit_reads_img_size() -> None:
    net = _net().eval()
    image = torch.rand(1, 1, 2 * SMALL, 2 * SMALL)
    with torch.no_grad():
        out = net(image)
        small = torch.nn.functional.interpolate(image, size=(SMALL, SMALL), mode="area")
        tokens, _ = net.encode(small)
    assert out.lesion_map.shape == image.shape and out.restored.shape == image.shape
    assert out.grid_size == (SMALL // 16, SMALL // 16)
    torch.testing.assert_close(out.tokens, tokens)


def test_forward_local_is_fully_convolutional_on_crops() -> None:
    net = _net().eval()
    image = torch.rand(1, 1, 96, 128)
    with torch.no_grad():
        restored, logits, lmap = net.forward_local(image)
        crop = net.forward_local(image[..., :48, :64])[2]
    assert restored.shape == logits.shape == lmap.shape == image.shape
    # away from the crop's border the crop's map equals the whole image's map (batch norm in eval mode)
    torch.testing.assert_close(crop[..., 8:24, 8:40], lmap[..., 8:24, 8:40], atol=1e-4, rtol=0)
    assert not torch.equal(crop, lmap[..., :48, :64])  # the border sees the padding: a real, not trivial, check


def test_local_image_trains_the_conv_path_on_crops_and_pools_the_whole_mask() -> None:
    net = _net()
    image, mask = _images()
    out = net(image, pool_map=mask, local_image=image[..., :32, :32])
    assert out.restored.shape == (2, 1, 32, 32) and out.lesion_map.shape == (2, 1, 32, 32)
    torch.testing.assert_close(out.lesion_token_weight, token_lesion_weights(mask, (4, 4)))
    with pytest.raises(ValueError, match="pool_map"):
        net(image, local_image=image[..., :32, :32])
    with pytest.raises(ValueError, match="restorer='conv'"):
        _net(restorer="vit", grounding="light").forward_local(image)


def test_unet_grounding_is_a_real_segmentation_network_without_transposed_convolutions() -> None:
    net = RadLAS(img_size=SMALL)
    head_params = sum(p.numel() for p in net.grounding_head.parameters())
    assert head_params >= 1_000_000
    unet = net.grounding_head.unet
    assert [name for name, _ in unet.named_children() if name.startswith("down_")] == [f"down_{i}" for i in range(1, 5)]
    transposed = (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose1d)
    assert not any(isinstance(m, transposed) for m in list(net.grounding_head.modules()) + list(net.decoder.modules()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"restorer": "unet"}, "restorer must be one of"],
        [{"grounding": "big"}, "grounding one of"],
        [{"grounding": "light", "grounding_features": (8, 8, 8, 8, 8, 8)}, "one int"],
    ],
)
def test_bad_path_names_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RadLAS(img_size=SMALL, **kwargs)


def test_vit_restorer_refuses_inputs_of_another_size() -> None:
    net = _net(restorer="vit", grounding="light")
    with pytest.raises(ValueError, match="img_size"):
        net(torch.rand(1, 1, 2 * SMALL, 2 * SMALL))
