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


def _reference(restored: torch.Tensor, healthy: torch.Tensor, mask: torch.Tensor | None, lam: float) -> list[float]:
    out = []
    for b in range(restored.shape[0]):
        num = den = 0.0
        for i in range(restored.shape[2]):
            for j in range(restored.shape[3]):
                w = 1.0 + lam * (float(mask[b, 0, i, j]) if mask is not None else 0.0)
                num += w * abs(float(restored[b, 0, i, j]) - float(healthy[b, 0, i, j]))
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
]


@pytest.mark.parametrize("kwargs, use_mask", CASES)
def test_matches_reference(kwargs: dict, use_mask: bool) -> None:
    restored, healthy, mask = _batch()
    mask = mask if use_mask else None
    loss = LesionWeightedReconstructionLoss(**kwargs)(restored, healthy, mask)
    ref = torch.tensor(_reference(restored, healthy, mask, kwargs["lesion_weight"]))
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
