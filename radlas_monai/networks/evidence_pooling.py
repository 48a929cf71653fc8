"""Evidence pooling: per-class attention over ViT patch tokens, biased by the grounded lesion map.

For class ``k`` with a learned query ``q_k`` (``D``-dim) and a learned lesion bias ``beta_k``, the attention of
image ``b`` over its patch tokens ``t_n`` (``n = 1..N``) is::

    a_kn = softmax_n( q_k . t_n / sqrt(D) + beta_k * log(w_n + eps) )

where ``w_n`` in ``[0, 1]`` is the fraction of patch ``n`` covered by the grounded lesion map
(:func:`~radlas_monai.networks.pooling.token_lesion_weights`). With ``beta_k = 1`` the softmax is multiplied by
``(w_n + eps)`` before renormalisation, i.e. a class reads lesion tokens first; ``beta_k = 0`` ignores the map,
``beta_k < 0`` prefers normal anatomy (e.g. a diffuse finding). ``beta_k`` is learned, initialised to ``beta_init``.

The pooled feature ``p_k = sum_n a_kn t_n`` is concatenated with the global feature ``g`` (mean token) and read by
a per-class linear layer: ``logit_k = u_k . [p_k, g] + c_k``. The attention of class ``k`` is its *evidence*:
:func:`attention_to_evidence_maps` turns it into an image-resolution map (see there for the normalisation).

Related: per-class attention pooling as in ML-Decoder (Ridnik et al., WACV 2023) and class-specific attention
(Zhu & Wu, "Residual attention", ICCV 2021); the lesion bias is the RadLAS addition.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["EvidencePoolingHead", "attention_to_evidence_maps"]


class EvidencePoolingHead(nn.Module):
    """Per-class, lesion-biased attention pooling of patch tokens plus the global feature -> one logit per class.

    Args:
        num_classes: number of classes ``K``.
        hidden_size: token width ``D``.
        evidence_eps: ``eps`` in ``log(w_n + eps)``; bounds the bias at ``beta_k * log(eps)`` for lesion-free tokens.
        beta_init: initial lesion bias ``beta_k`` of every class.
        dropout: dropout on the concatenated features before the linear read-out.

    Raises:
        ValueError: ``num_classes < 1``, ``hidden_size < 1``, ``evidence_eps <= 0`` or ``dropout`` outside ``[0, 1)``.
    """

    def __init__(
        self,
        num_classes: int,
        hidden_size: int,
        evidence_eps: float = 1e-2,
        beta_init: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 1 or hidden_size < 1:
            raise ValueError(f"need num_classes >= 1 and hidden_size >= 1, got {num_classes} and {hidden_size}")
        if evidence_eps <= 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need evidence_eps > 0 and dropout in [0, 1), got {evidence_eps} and {dropout}")
        self.num_classes = int(num_classes)
        self.hidden_size = int(hidden_size)
        self.evidence_eps = float(evidence_eps)
        self.queries = nn.Parameter(torch.empty(num_classes, hidden_size))
        self.lesion_bias = nn.Parameter(torch.full((num_classes,), float(beta_init)))
        self.dropout = nn.Dropout(dropout)
        self.weight = nn.Parameter(torch.empty(num_classes, 2 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.trunc_normal_(self.queries, std=0.02)
        nn.init.trunc_normal_(self.weight, std=0.02)

    def attention(self, tokens: torch.Tensor, token_weight: torch.Tensor) -> torch.Tensor:
        """Per-class attention ``(B, K, N)`` over tokens; every ``[b, k, :]`` sums to 1.

        Args:
            tokens: patch tokens ``(B, N, D)``.
            token_weight: per-token lesion fraction ``(B, N)`` in ``[0, 1]``.

        Raises:
            ValueError: on ill-shaped inputs.
        """
        if tokens.ndim != 3 or tokens.shape[-1] != self.hidden_size or token_weight.shape != tokens.shape[:2]:
            raise ValueError(
                f"expected tokens (B, N, {self.hidden_size}) and token_weight (B, N), got {tuple(tokens.shape)} and "
                f"{tuple(token_weight.shape)}"
            )
        scores = torch.einsum("kd,bnd->bkn", self.queries, tokens) / math.sqrt(self.hidden_size)
        prior = torch.log(token_weight.clamp(0.0, 1.0).to(scores.dtype) + self.evidence_eps)
        scores = scores + self.lesion_bias[None, :, None] * prior[:, None, :]
        return torch.softmax(scores.float(), dim=-1).to(tokens.dtype)

    def forward(
        self, tokens: torch.Tensor, token_weight: torch.Tensor, global_feature: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and attention.

        Args:
            tokens: patch tokens ``(B, N, D)``.
            token_weight: per-token lesion fraction ``(B, N)`` in ``[0, 1]``.
            global_feature: global feature ``(B, D)``.

        Returns:
            ``(logits (B, K), attention (B, K, N))``.

        Raises:
            ValueError: on ill-shaped inputs.
        """
        attention = self.attention(tokens, token_weight)
        if global_feature.shape != (tokens.shape[0], self.hidden_size):
            raise ValueError(f"expected global_feature (B, {self.hidden_size}), got {tuple(global_feature.shape)}")
        pooled = torch.einsum("bkn,bnd->bkd", attention, tokens)
        features = torch.cat([pooled, global_feature[:, None].expand_as(pooled)], dim=-1)
        logits = torch.einsum("bkf,kf->bk", self.dropout(features), self.weight) + self.bias
        return logits, attention


def attention_to_evidence_maps(
    attention: torch.Tensor, grid_size: tuple[int, int], image_size: tuple[int, int], eps: float = 1e-12
) -> torch.Tensor:
    """Per-class evidence maps at image resolution from per-class token attention.

    The attention ``(B, K, N)`` (each row sums to 1 over the ``N = gh * gw`` tokens, row-major) is reshaped to the
    token grid, bilinearly upsampled to ``image_size`` and **max-normalised per image and class**, so every map lies
    in ``[0, 1]`` with its maximum exactly 1 at the most-attended location; values are proportional to attention,
    so a token attended half as much as the top one reads 0.5.

    Args:
        attention: ``(B, K, N)`` non-negative attention.
        grid_size: token grid ``(gh, gw)``.
        image_size: output ``(H, W)``.
        eps: floor of the normaliser.

    Returns:
        ``(B, K, H, W)`` maps in ``[0, 1]``.

    Raises:
        ValueError: when ``N != gh * gw``.
    """
    b, k, n = attention.shape
    gh, gw = int(grid_size[0]), int(grid_size[1])
    if n != gh * gw:
        raise ValueError(f"attention over {n} tokens does not fit the token grid {(gh, gw)}")
    grid = attention.float().reshape(b, k, gh, gw)
    maps = F.interpolate(grid, size=tuple(int(s) for s in image_size), mode="bilinear", align_corners=False)
    maps = maps.clamp_min(0.0)
    peak = maps.flatten(2).amax(dim=-1).clamp_min(eps)[..., None, None]
    return (maps / peak).clamp(0.0, 1.0)
