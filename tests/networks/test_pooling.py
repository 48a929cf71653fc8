"""Tests for radlas_monai.networks.pooling: lesion-weighted token pooling."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.pooling import lesion_weighted_pooling, token_lesion_weights

GRID = (2, 3)  # 6 tokens over an 8 x 12 map (4 x 4 pixels per token)


def _tokens(batch: int = 2, dim: int = 5) -> torch.Tensor:
    return torch.randn(batch, GRID[0] * GRID[1], dim, generator=torch.Generator().manual_seed(0))


def test_token_weights_reference_loop() -> None:
    lesion_map = torch.rand(2, 1, 8, 12, generator=torch.Generator().manual_seed(1))
    expected = torch.zeros(2, 6)
    for b in range(2):
        for r in range(2):
            for c in range(3):
                expected[b, r * 3 + c] = lesion_map[b, 0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].mean()
    torch.testing.assert_close(token_lesion_weights(lesion_map, GRID), expected)


def test_map_on_one_patch_pools_exactly_that_token() -> None:
    tokens = _tokens()
    lesion_map = torch.zeros(2, 1, 8, 12)
    lesion_map[0, :, 4:8, 8:12] = 1.0  # image 0: row 1, column 2 -> token 5
    lesion_map[1, :, 0:4, 4:8] = 1.0  # image 1: row 0, column 1 -> token 1
    lesion, normal, weight = lesion_weighted_pooling(tokens, lesion_map, GRID)
    torch.testing.assert_close(lesion[0], tokens[0, 5])
    torch.testing.assert_close(lesion[1], tokens[1, 1])
    torch.testing.assert_close(normal[0], tokens[0, :5].mean(0))
    torch.testing.assert_close(normal[1], tokens[1, [0, 2, 3, 4, 5]].mean(0))
    assert weight.tolist() == [[0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]]


def test_partial_coverage_is_a_weighted_mean() -> None:
    tokens = _tokens(batch=1)
    lesion_map = torch.zeros(1, 1, 8, 12)
    lesion_map[..., 0:4, 0:2] = 1.0  # half of token 0
    lesion_map[..., 0:4, 4:8] = 1.0  # all of token 1
    lesion, normal, weight = lesion_weighted_pooling(tokens, lesion_map, GRID)
    w = torch.tensor([0.5, 1.0, 0, 0, 0, 0])
    torch.testing.assert_close(weight[0], w)
    torch.testing.assert_close(lesion[0], (w[:, None] * tokens[0]).sum(0) / w.sum())
    torch.testing.assert_close(normal[0], ((1 - w)[:, None] * tokens[0]).sum(0) / (1 - w).sum())


def test_empty_and_full_maps_are_safe() -> None:
    tokens = _tokens()
    lesion, normal, weight = lesion_weighted_pooling(tokens, torch.zeros(2, 1, 8, 12), GRID)
    assert torch.equal(lesion, torch.zeros_like(lesion)) and torch.equal(weight, torch.zeros_like(weight))
    torch.testing.assert_close(normal, tokens.mean(1))
    lesion, normal, _ = lesion_weighted_pooling(tokens, torch.ones(2, 1, 8, 12), GRID)
    torch.testing.assert_close(lesion, tokens.mean(1))
    assert torch.equal(normal, torch.zeros_like(normal))


def test_gradients_reach_tokens_and_map() -> None:
    tokens = _tokens().requires_grad_()
    lesion_map = torch.rand(2, 1, 8, 12, generator=torch.Generator().manual_seed(2)).requires_grad_()
    lesion, normal, _ = lesion_weighted_pooling(tokens, lesion_map, GRID)
    (lesion.sum() + 2 * normal.sum()).backward()
    assert torch.isfinite(tokens.grad).all() and tokens.grad.abs().sum() > 0
    assert torch.isfinite(lesion_map.grad).all() and lesion_map.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "tokens, lesion_map, match",
    [
        (torch.zeros(2, 7, 5), torch.zeros(2, 1, 8, 12), "6 cells but tokens have N=7"),
        (torch.zeros(2, 6, 5), torch.zeros(2, 1, 9, 12), r"\(9, 12\) must be a multiple of the token grid \(2, 3\)"),
        (torch.zeros(2, 6, 5), torch.zeros(2, 2, 8, 12), r"\(B, 1, H, W\), got \(2, 2, 8, 12\)"),
        (torch.zeros(3, 6, 5), torch.zeros(2, 1, 8, 12), r"got \(3, 6, 5\)"),
    ],
)
def test_bad_shapes_raise(tokens: torch.Tensor, lesion_map: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lesion_weighted_pooling(tokens, lesion_map, GRID)
