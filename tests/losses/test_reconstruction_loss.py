"""Tests for radlas_monai.losses.reconstruction.LesionWeightedReconstructionLoss."""

from __future__ import annotations

import pytest
import torch
from monai.losses import SSIMLoss

from radlas_monai.losses.reconstruction import LesionWeightedReconstructionLoss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    healthy = torch.rand(2, 1, 9, 9, generator=g)
    restored = torch.rand(2, 1, 9, 9, generator=g)
    mask = torch.zeros(2, 1, 9, 9)
    mask[0, :, 2:5, 3:7] = 1.0
    mask[1, :, 6:8, 0:2] = 0.5  # soft mask values are used as given
    return restored, healthy, mask


def _huber(d: float, beta: float) -> float:
    return 0.5 * d * d / beta if beta > 0 and d < beta else d - 0.5 * beta


def _reference(
    restored: torch.Tensor, healthy: torch.Tensor, mask: torch.Tensor | None, lam: float, beta: float = 0.05
) -> list[float]:
    out = []
    for b in range(restored.shape[0]):
        num = den = 0.0
        for i in range(restored.shape[2]):
            for j in range(restored.shape[3]):
                w = 1.0 + lam * (float(mask[b, 0, i, j]) if mask is not None else 0.0)
                num += w * _huber(abs(float(restored[b, 0, i, j]) - float(healthy[b, 0, i, j])), beta)
                den += w
        out.append(num / den)
    return out


# [init kwargs, use mask]
CASES = [
    [{"lesion_weight": 5.0}, True],
    [{"lesion_weight": 0.0}, True],
    [{"lesion_weight": 2.0}, False],
    [{"lesion_weight": 10.0, "reduction": "none"}, True],
    [{"lesion_weight": 1.0, "reduction": "sum"}, True],
    [{"lesion_weight": 5.0, "beta": 0.0}, True],
    [{"lesion_weight": 5.0, "beta": 0.3}, True],
    [{"lesion_weight": 2.0, "beta": 1.5}, False],
]


@pytest.mark.parametrize("kwargs, use_mask", CASES)
def test_matches_reference(kwargs: dict, use_mask: bool) -> None:
    restored, healthy, mask = _batch()
    mask = mask if use_mask else None
    loss = LesionWeightedReconstructionLoss(**kwargs)(restored, healthy, mask)
    ref = torch.tensor(_reference(restored, healthy, mask, kwargs["lesion_weight"], kwargs.get("beta", 0.05)))
    expected = {"none": ref, "sum": ref.sum()}.get(kwargs.get("reduction", "mean"), ref.mean())
    torch.testing.assert_close(loss, expected)


def test_ssim_term_is_monai_ssim() -> None:
    restored, healthy, mask = _batch()
    plain = LesionWeightedReconstructionLoss(lesion_weight=5.0, reduction="none")(restored, healthy, mask)
    both = LesionWeightedReconstructionLoss(lesion_weight=5.0, ssim_weight=0.5, ssim_win_size=5, reduction="none")
    ssim = SSIMLoss(spatial_dims=2, win_size=5, reduction="none")(restored, healthy).view(-1)
    torch.testing.assert_close(both(restored, healthy, mask), plain + 0.5 * ssim)


@pytest.mark.parametrize("kwargs", [{}, {"ssim_weight": 1.0, "ssim_win_size": 3}])
def test_zero_for_identity_reconstruction(kwargs: dict) -> None:
    _, healthy, mask = _batch()
    loss = LesionWeightedReconstructionLoss(**kwargs)(healthy.clone(), healthy, mask)
    assert abs(float(loss)) < 1e-6


def test_errors_inside_the_lesion_cost_more() -> None:
    _, healthy, mask = _batch()
    inside, outside = healthy.clone(), healthy.clone()
    inside[0, 0, 3, 4] += 0.5  # in the lesion of image 0
    outside[0, 0, 8, 8] += 0.5  # outside it
    loss = LesionWeightedReconstructionLoss(lesion_weight=5.0)
    assert float(loss(inside, healthy, mask)) > 2 * float(loss(outside, healthy, mask))


def test_gradients_finite() -> None:
    restored, healthy, mask = _batch()
    restored.requires_grad_()
    LesionWeightedReconstructionLoss(ssim_weight=0.2, ssim_win_size=3)(restored, healthy, mask).backward()
    assert torch.isfinite(restored.grad).all() and restored.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((2, 1, 9, 9), (2, 1, 9, 8), None), r"\(2, 1, 9, 9\) and \(2, 1, 9, 8\)"),
        (((2, 1, 9, 9), (2, 1, 9, 9), (2, 1, 8, 9)), r"\(2, 1 or 1, 9, 9\), got \(2, 1, 8, 9\)"),
        (((9, 9), (9, 9), None), r"got \(9, 9\) and \(9, 9\)"),
    ],
)
def test_bad_shapes_raise(shapes: tuple, match: str) -> None:
    restored, healthy = torch.zeros(shapes[0]), torch.zeros(shapes[1])
    mask = torch.zeros(shapes[2]) if shapes[2] else None
    with pytest.raises(ValueError, match=match):
        LesionWeightedReconstructionLoss()(restored, healthy, mask)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lesion_weight": -1.0}, "lesion_weight"),
        ({"beta": -0.1}, "beta"),
        ({"ssim_win_size": 4}, "ssim_win_size"),
        ({"reduction": "max"}, "max"),
    ],
)
def test_bad_hyper_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LesionWeightedReconstructionLoss(**kwargs)


def test_window_larger_than_image_raises() -> None:
    restored, healthy, _ = _batch()
    with pytest.raises(ValueError, match=r"\(9, 9\) is smaller than ssim_win_size 11"):
        LesionWeightedReconstructionLoss(ssim_weight=1.0, ssim_win_size=11)(restored, healthy)


def test_small_residuals_on_normal_pixels_pull_weakly() -> None:
    """Near the identity, normal pixels must not out-pull the lesion (the restorer would stay an identity)."""
    healthy = torch.full((1, 1, 8, 8), 0.5)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1.0
    restored = healthy + 1e-3  # a tiny residual everywhere ...
    restored[..., :2, :2] = healthy[..., :2, :2] + 0.2  # ... and a lesion not yet removed
    grads = {}
    for beta in (0.0, 0.05):
        r = restored.clone().requires_grad_(True)
        LesionWeightedReconstructionLoss(lesion_weight=5.0, beta=beta)(r, healthy, mask).backward()
        normal = r.grad[..., 2:, 2:].abs().sum()
        lesion = r.grad[..., :2, :2].abs().sum()
        grads[beta] = float(normal / lesion)
    assert grads[0.0] > 1.0  # plain L1: the 60 normal pixels outweigh the 4 lesion pixels
    assert grads[0.05] < 0.1  # smooth L1: the lesion drives the gradient


def test_restorer_learns_to_remove_lesions() -> None:
    """25 AdamW steps of a tiny RadLAS with the default loss cut the error inside small lesions (plain L1: ~1.0x)."""
    from radlas_monai.networks import RadLAS

    g = torch.Generator().manual_seed(0)
    rows = torch.linspace(0, 1, 64)
    healthy = (0.3 + 0.4 * rows[None, None, :, None] * rows[None, None, None, :]).repeat(4, 1, 1, 1)
    healthy = (healthy + 0.02 * torch.rand(4, 1, 64, 64, generator=g)).clamp(0, 1)
    mask = torch.zeros(4, 1, 64, 64)
    for b, (y, x) in enumerate([(10, 12), (30, 40), (44, 20), (20, 48)]):
        mask[b, :, y : y + 6, x : x + 6] = 1.0  # ~1 % of the pixels, as synthetic nodules
    corrupted = (healthy + 0.15 * mask).clamp(0, 1)
    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    loss = LesionWeightedReconstructionLoss()
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-4)
    inside = mask > 0
    before = float((corrupted - healthy).abs()[inside].mean())
    for _ in range(25):
        restored = network.restore(corrupted, *network.encode(corrupted))
        value = loss(restored, healthy, mask)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        after = float((network.restore(corrupted, *network.encode(corrupted)) - healthy).abs()[inside].mean())
    assert after < 0.6 * before, (before, after)  # measured 0.32 (beta 0.05) vs 1.00 (beta 0)
