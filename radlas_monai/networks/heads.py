"""Projection heads mapping encoder features into the contrastive embedding space (Task II).

SimCLR-style MLP (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020) with LayerNorm instead of BatchNorm, so that the same head can project
pooled features ``(B, D)`` and per-token features ``(B, N, D)`` and does not couple the samples of a
batch (lesion features of lesion-free images are zero vectors). Outputs are *not* L2-normalised;
the losses normalise.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers import trunc_normal_

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """``Linear -> LayerNorm -> GELU`` repeated ``num_layers - 1`` times, then ``Linear``.

    Args:
        in_features: input width ``D``.
        out_features: embedding width ``E``.
        hidden_features: hidden width (default ``max(in_features, 2 * out_features)``).
        num_layers: number of linear layers (>= 1).

    Shapes: ``(..., D) -> (..., E)`` (any leading dimensions).
    """

    def __init__(
        self, in_features: int, out_features: int = 128, hidden_features: int | None = None, num_layers: int = 2
    ) -> None:
        super().__init__()
        if num_layers < 1 or in_features < 1 or out_features < 1:
            raise ValueError(
                f"need num_layers >= 1 and positive widths, got num_layers={num_layers}, "
                f"in_features={in_features}, out_features={out_features}"
            )
        hidden = hidden_features or max(in_features, 2 * out_features)
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.mlp = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_features = out_features
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, mean=0.0, std=0.02, a=-2.0, b=2.0)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` of shape ``(..., D)`` to ``(..., E)``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected features of width {self.in_features}, got shape {tuple(x.shape)}")
        return self.mlp(x)
