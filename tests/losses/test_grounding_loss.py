"""Tests for radlas_monai.losses.grounding.GroundingLoss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

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


def _two_lesions() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 32, 32, generator=g) * 2
    target = torch.zeros(2, 1, 32, 32)
    target[0, 0, 2:6, 2:6] = 1.0  # a small lesion (window: rows/cols 0:10)
    target[0, 0, 20:30, 20:30] = 1.0  # a large one (window: rows/cols 13:32, clipped)
    target[1, 0, 10:14, 15:19] = 1.0  # image 1: one lesion (window 6:18 x 11:23)
    return logits, target


def _dice(prob: torch.Tensor, own: torch.Tensor) -> float:
    return 1 - (2 * float((prob * own).sum()) + 1e-5) / (float(prob.sum()) + float(own.sum()) + 1e-5)


def test_lesion_dice_matches_a_hand_written_window_per_lesion() -> None:
    logits, target = _two_lesions()
    prob = torch.sigmoid(logits)[:, 0]
    small, large, third = torch.zeros(32, 32), torch.zeros(32, 32), torch.zeros(32, 32)
    small[2:6, 2:6], large[20:30, 20:30], third[10:14, 15:19] = 1, 1, 1
    per_lesion = [
        _dice(prob[0, 0:10, 0:10], small[0:10, 0:10]),
        _dice(prob[0, 13:32, 13:32], large[13:32, 13:32]),  # the small lesion is outside this window
        _dice(prob[1, 6:18, 11:23], third[6:18, 11:23]),
    ]
    loss = GroundingLoss(bce_weight=0.0, dice_mode="lesion")
    torch.testing.assert_close(loss(logits, target), torch.tensor(sum(per_lesion) / 3))
    none = GroundingLoss(bce_weight=0.0, dice_mode="lesion", reduction="none")(logits, target)
    torch.testing.assert_close(none, torch.tensor([(per_lesion[0] + per_lesion[1]) / 2, per_lesion[2]]))


def test_lesion_dice_weighs_a_missed_small_lesion_like_a_large_one() -> None:
    # the map finds the large lesion and misses the small one: image Dice barely notices, per-lesion Dice does
    _, target = _two_lesions()
    target = target[:1]
    logits = torch.where(target > 0, 20.0, -20.0)
    logits[0, 0, 2:6, 2:6] = -20.0
    image = float(GroundingLoss(bce_weight=0.0)(logits, target))
    lesion = float(GroundingLoss(bce_weight=0.0, dice_mode="lesion")(logits, target))
    assert image < 0.1 and lesion > 0.45


def test_outside_weight_costs_only_pixels_outside_the_lungs() -> None:
    logits, target = _batch()
    lung = torch.zeros_like(target)
    lung[..., 1:5, 1:5] = 1.0
    weight = 1 + 4 * (lung <= 0.5).float()
    expected = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).mean()
    loss = GroundingLoss(dice_weight=0.0, outside_weight=5.0)
    torch.testing.assert_close(loss(logits, target, lung), expected)
    torch.testing.assert_close(loss(logits, target), GroundingLoss(dice_weight=0.0)(logits, target))  # no mask
    with pytest.raises(ValueError, match="lung_mask"):
        loss(logits, target, lung[..., :4])


@pytest.mark.parametrize("kwargs, match", [({"outside_weight": 0.0}, "outside_weight"), ({"dice_mode": "px"}, "px")])
def test_bad_lesion_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GroundingLoss(**kwargs)
