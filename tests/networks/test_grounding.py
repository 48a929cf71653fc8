"""Tests for radlas_monai.networks.grounding: the lesion-map function and the learned grounding head."""

from __future__ import annotations

import math

import pytest
import torch

from radlas_monai.networks.grounding import GroundingHead, fixed_contrast, gaussian_smooth, lesion_map

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 1, size, size, generator=g)
    return image, (image + 0.2 * torch.randn(image.shape, generator=g)).clamp(0, 1)


def test_identical_images_give_an_empty_map() -> None:
    image, _ = _pair()
    assert torch.equal(lesion_map(image, image.clone()), torch.zeros_like(image))


def test_fixed_contrast_reference_without_smoothing() -> None:
    image, restored = _pair()
    out = lesion_map(image, restored, smooth=0.0, contrast_scale=0.2)
    ref = torch.empty_like(image)
    for idx in torch.cartesian_prod(*(torch.arange(s) for s in image.shape)).tolist():
        ref[tuple(idx)] = math.tanh(abs(float(image[tuple(idx)]) - float(restored[tuple(idx)])) / 0.2)
    torch.testing.assert_close(out, ref)


def test_fixed_contrast_localises_a_lesion() -> None:
    healthy = torch.full((1, 1, 32, 32), 0.4)
    lesioned = healthy.clone()
    lesioned[..., 10:14, 20:24] = 0.8  # a bright blob the restorer removed
    out = lesion_map(lesioned, healthy)
    peak = divmod(int(out.flatten().argmax()), 32)
    assert 10 <= peak[0] < 14 and 20 <= peak[1] < 24
    assert out[..., 0:4, 0:4].max() < 1e-3
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_mixing_with_learned_logits(weight: float) -> None:
    image, restored = _pair()
    logits = torch.randn(image.shape, generator=torch.Generator().manual_seed(1))
    out = lesion_map(image, restored, logits, contrast_weight=weight, smooth=1.0, contrast_scale=0.1)
    contrast = torch.tanh(gaussian_smooth((image - restored).abs(), 1.0) / 0.1)
    torch.testing.assert_close(out, (1 - weight) * torch.sigmoid(logits) + weight * contrast)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_contrast_is_monotone_in_the_residual() -> None:
    healthy = torch.full((1, 1, 8, 8), 0.5)
    values = [float(lesion_map(healthy + d, healthy, smooth=0.0).mean()) for d in (0.0, 0.05, 0.1, 0.3)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] < 1.0


def test_gaussian_smooth_properties() -> None:
    const = torch.full((1, 2, 9, 9), 0.7)
    torch.testing.assert_close(gaussian_smooth(const, 2.0), const)  # normalised kernel, replicate border
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    blurred = gaussian_smooth(impulse, 1.0)
    torch.testing.assert_close(blurred.sum(), torch.tensor(1.0))
    torch.testing.assert_close(blurred, blurred.flip(-1).flip(-2))  # symmetric
    assert int(blurred.flatten().argmax()) == 4 * 9 + 4
    assert gaussian_smooth(impulse, 0.0) is impulse


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"restored": torch.zeros(2, 1, 8, 9)}, r"\(2, 1, 8, 8\) and \(2, 1, 8, 9\)"),
        ({"image": torch.zeros(2, 3, 8, 8), "restored": torch.zeros(2, 3, 8, 8)}, r"\(B, 1, H, W\)"),
        ({"grounding_logits": torch.zeros(2, 1, 4, 4)}, r"grounding_logits \(2, 1, 4, 4\)"),
        ({"contrast_weight": 1.5}, "contrast_weight"),
    ],
)
def test_lesion_map_rejects_bad_inputs(kwargs: dict, match: str) -> None:
    args = {"image": torch.zeros(2, 1, 8, 8), "restored": torch.zeros(2, 1, 8, 8), **kwargs}
    contrast_weight = args.pop("contrast_weight", 0.0)
    with pytest.raises(ValueError, match=match):
        lesion_map(**args, contrast_weight=contrast_weight)
    with pytest.raises(ValueError, match="contrast_scale"):
        fixed_contrast(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), contrast_scale=0.0)


@pytest.mark.parametrize("shuffle, size", [(2, 32), (1, 16), (2, 24)])
def test_grounding_head_shapes_and_prior(shuffle: int, size: int) -> None:
    torch.manual_seed(0)
    head = GroundingHead(features=4, shuffle=shuffle).eval()
    torch.nn.init.zeros_(head.out.conv.conv.weight)
    image, restored = _pair(size=size)
    logits = head(image, restored)
    assert logits.shape == image.shape
    torch.testing.assert_close(torch.sigmoid(logits), torch.full_like(logits, 0.01), atol=1e-4, rtol=0)


def test_grounding_head_learns_to_localise_from_the_contrast() -> None:
    torch.manual_seed(0)
    head = GroundingHead(features=4)
    image = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    restored, mask = image.clone(), torch.zeros_like(image)
    for b, (r, c) in enumerate([(2, 3), (8, 8), (10, 2), (4, 11)]):
        image[b, :, r : r + 4, c : c + 4] += 0.4  # lesion present in the input, removed in the restoration
        mask[b, :, r : r + 4, c : c + 4] = 1.0
    assert not torch.equal(head(image, restored), head(image, image))
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(image, restored), mask)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in head.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_grounding_head_rejects_indivisible_size() -> None:
    with pytest.raises(ValueError, match=r"divisible by 8, got \(2, 1, 20, 20\)"):
        GroundingHead(features=4)(*_pair(size=20))
