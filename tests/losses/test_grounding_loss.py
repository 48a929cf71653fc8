"""Tests for radlas_monai.losses.grounding.GroundingLoss."""

from __future__ import annotations

import math

import pytest
import torch

from radlas_monai.losses.grounding import GroundingLoss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 1, 6, 6, generator=g) * 2
    target = torch.zeros(3, 1, 6, 6)
    target[0, :, 1:4, 1:3] = 1.0
    target[1, :, 2:5, 2:6] = 0.6  # soft target
    return logits, target  # image 2 has no lesion


def _reference(
    logits: torch.Tensor, target: torch.Tensor, bce_w: float, dice_w: float, gamma: float = 0.0, pos_w: float = 1.0
) -> tuple[list, list, list]:
    bce, dice, has = [], [], []
    for b in range(logits.shape[0]):
        total, inter, psum, ysum = 0.0, 0.0, 0.0, 0.0
        for i in range(logits.shape[2]):
            for j in range(logits.shape[3]):
                p = 1 / (1 + math.exp(-float(logits[b, 0, i, j])))
                y = float(target[b, 0, i, j])
                term = -(y * math.log(p) + (1 - y) * math.log(1 - p))
                p_t = p * y + (1 - p) * (1 - y)
                total += term * (1 - p_t) ** gamma * (1 + (pos_w - 1) * y)
                inter, psum, ysum = inter + p * y, psum + p, ysum + y
        bce.append(bce_w * total / (logits.shape[2] * logits.shape[3]))
        dice.append(dice_w * (1 - (2 * inter + 1e-5) / (psum + ysum + 1e-5)) if ysum > 0 else 0.0)
        has.append(ysum > 0)
    return bce, dice, has


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"bce_weight": 0.5, "dice_weight": 2.0},
        {"dice_weight": 0.0},
        {"reduction": "none"},
        {"reduction": "sum"},
        {"focal_gamma": 2.0, "bce_weight": 10.0},
        {"focal_gamma": 1.0, "pos_weight": 4.0, "reduction": "none"},
    ],
)
def test_matches_reference(kwargs: dict) -> None:
    logits, target = _batch()
    bw, dw = kwargs.get("bce_weight", 1.0), kwargs.get("dice_weight", 1.0)
    bce, dice, has = _reference(logits, target, bw, dw, kwargs.get("focal_gamma", 0.0), kwargs.get("pos_weight", 1.0))
    reduction = kwargs.get("reduction", "mean")
    expected = {
        "mean": sum(bce) / len(bce) + sum(dice) / max(1, sum(has)),
        "sum": sum(bce) + sum(dice),
    }.get(reduction)
    out = GroundingLoss(**kwargs)(logits, target)
    if reduction == "none":
        torch.testing.assert_close(out, torch.tensor([b + d for b, d in zip(bce, dice)]))
    else:
        torch.testing.assert_close(out, torch.tensor(expected))


def test_lesion_free_images_count_for_bce_only() -> None:
    logits, target = _batch()
    loss = GroundingLoss(reduction="none")
    only_bce = GroundingLoss(dice_weight=0.0, reduction="none")
    torch.testing.assert_close(loss(logits, target)[2], only_bce(logits, target)[2])
    empty = torch.zeros_like(target)
    torch.testing.assert_close(GroundingLoss()(logits, empty), GroundingLoss(dice_weight=0.0)(logits, empty))


def test_threshold_binarises_the_target() -> None:
    logits, target = _batch()
    torch.testing.assert_close(
        GroundingLoss(mask_threshold=0.5)(logits, target), GroundingLoss()(logits, (target > 0.5).float())
    )


def test_perfect_prediction_beats_a_wrong_one() -> None:
    _, target = _batch()
    binary = (target > 0).float()
    good = (binary * 2 - 1) * 20.0
    loss = GroundingLoss()
    assert float(loss(good, binary)) < 1e-3 < float(loss(-good, binary))


def test_gradients_finite() -> None:
    logits, target = _batch()
    logits.requires_grad_()
    GroundingLoss()(logits, target).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "logits, target, match",
    [
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5), r"\(2, 1, 4, 4\) and \(2, 1, 4, 5\)"),
        (torch.zeros(2, 2, 4, 4), torch.zeros(2, 2, 4, 4), r"\(B, 1, H, W\).*\(2, 2, 4, 4\)"),
    ],
)
def test_bad_shapes_raise(logits: torch.Tensor, target: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GroundingLoss()(logits, target)


def test_bad_weights_raise() -> None:
    with pytest.raises(ValueError, match="-1.0"):
        GroundingLoss(bce_weight=-1.0)


def test_focal_term_down_weights_easy_background() -> None:
    target = torch.zeros(1, 1, 4, 4)
    easy = torch.full((1, 1, 4, 4), -6.0)  # confidently right background
    plain, focal = GroundingLoss(dice_weight=0.0), GroundingLoss(dice_weight=0.0, focal_gamma=2.0)
    assert float(focal(easy, target)) < 1e-3 * float(plain(easy, target))
    hard = torch.full((1, 1, 4, 4), 3.0)  # confidently wrong: focal keeps most of the loss
    assert float(focal(hard, target)) > 0.9 * float(plain(hard, target))


@pytest.mark.parametrize("kwargs", [{"focal_gamma": -1.0}, {"pos_weight": 0.0}])
def test_bad_focal_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="focal_gamma"):
        GroundingLoss(**kwargs)
