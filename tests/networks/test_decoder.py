"""Tests for radlas_monai.networks.decoder: the lean UNETR-style restoration decoder."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.decoder import RestorationDecoder, straight_through_clamp

pytestmark = pytest.mark.usefixtures("one_thread")


D, GRID, PATCH = 24, (2, 3), 16


def _inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 1, GRID[0] * PATCH, GRID[1] * PATCH, generator=g)
    tokens = torch.randn(batch, GRID[0] * GRID[1], D, generator=g)
    return image, tokens, [torch.randn(batch, 6, D, generator=g) for _ in range(3)]


# [init kwargs, widths of the decoder levels, finest level]
CASES = [
    [{"feature_size": 8, "shuffle": 2}, (8, 16, 32), 1],
    [{"feature_size": 4, "shuffle": 1}, (4, 4, 8, 16), 0],
    [{"feature_size": 8, "shuffle": 2, "norm_name": "instance", "res_block": True}, (8, 16, 32), 1],
]


@pytest.mark.parametrize("kwargs, widths, finest", CASES)
def test_identity_at_init_and_shapes(kwargs: dict, widths: tuple[int, ...], finest: int) -> None:
    torch.manual_seed(0)
    dec = RestorationDecoder(D, GRID, PATCH, **kwargs)
    assert dec.widths == widths and dec.finest == finest
    image, tokens, inter = _inputs()
    assert torch.equal(dec(image, tokens, inter), image)  # zero-initialised output: the identity
    torch.nn.init.normal_(dec.out.conv.conv.weight, std=1.0)
    restored = dec(image, tokens, inter)
    assert restored.shape == image.shape
    assert restored.min() >= 0 and restored.max() <= 1 and not torch.equal(restored, image)


def test_every_skip_reaches_the_output() -> None:
    torch.manual_seed(0)
    dec = RestorationDecoder(D, GRID, PATCH, feature_size=4).eval()
    torch.nn.init.normal_(dec.out.conv.conv.weight, std=1.0)
    image, tokens, inter = _inputs()
    base = dec.residual(image, tokens, inter)
    for i in range(3):
        changed = [t.clone() for t in inter]
        changed[i] += 1.0
        assert not torch.allclose(dec.residual(image, tokens, changed), base), f"skip {i} unused"
    assert not torch.allclose(dec.residual(image, tokens + 1.0, inter), base)
    assert not torch.allclose(dec.residual(image.flip(-1), tokens, inter), base)


def test_no_full_resolution_convolution_with_shuffle() -> None:
    dec = RestorationDecoder(D, GRID, PATCH, feature_size=4, shuffle=2)
    image, tokens, inter = _inputs(batch=1)
    sizes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-2:]))
        for m in dec.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    dec(image, tokens, inter)
    for h in hooks:
        h.remove()
    assert max(s[0] for s in sizes) == image.shape[-2] // 2


def test_straight_through_clamp() -> None:
    x = torch.tensor([-0.5, 0.25, 1.5], requires_grad=True)
    y = straight_through_clamp(x)
    assert y.tolist() == [0.0, 0.25, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]  # gradient passes where a plain clamp would kill it


@pytest.mark.parametrize(
    "kwargs, match",
    [({"patch_size": 12}, "power of two"), ({"shuffle": 4}, "shuffle"), ({"feature_size": 0}, "feature_size")],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RestorationDecoder(D, GRID, **kwargs)


def test_bad_inputs_name_shapes() -> None:
    dec = RestorationDecoder(D, GRID, PATCH, feature_size=4)
    image, tokens, inter = _inputs()
    with pytest.raises(ValueError, match=r"\(B, 6, 24\), got \(2, 5, 24\)"):
        dec(image, tokens[:, :5], inter)
    with pytest.raises(ValueError, match=r"expected image \(B, C, 32, 48\), got \(2, 1, 48, 48\)"):
        dec(torch.rand(2, 1, 48, 48), tokens, inter)
    with pytest.raises(ValueError, match="3 intermediate"):
        dec(image, tokens, inter[:2])
