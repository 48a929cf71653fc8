"""Tests for radlas_monai.networks.heads: the projection head."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.networks.heads import ProjectionHead


@pytest.mark.parametrize(
    "kwargs, n_linear, hidden",
    [
        ({"in_features": 12, "out_features": 4}, 2, 12),
        ({"in_features": 6, "out_features": 8, "num_layers": 3}, 3, 16),
        ({"in_features": 6, "out_features": 8, "num_layers": 1}, 1, None),
    ],
)
def test_structure_and_shapes(kwargs: dict, n_linear: int, hidden: int | None) -> None:
    torch.manual_seed(0)
    head = ProjectionHead(**kwargs)
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert len(linears) == n_linear
    if hidden is not None:
        assert linears[0].out_features == hidden
    d, e = kwargs["in_features"], kwargs["out_features"]
    assert head(torch.randn(3, d)).shape == (3, e)
    tokens = torch.randn(2, 5, d)
    out = head(tokens)
    assert out.shape == (2, 5, e)
    torch.testing.assert_close(out[1, 3], head(tokens[1, 3][None])[0])  # no coupling across samples


def test_bad_width_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"width 12, got shape \(3, 10\)"):
        ProjectionHead(12, 4)(torch.randn(3, 10))
    with pytest.raises(ValueError, match="num_layers=0"):
        ProjectionHead(12, 4, num_layers=0)
