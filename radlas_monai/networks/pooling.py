"""Lesion-weighted token pooling (Task II): lesion-cue and normal-anatomy features.

A pixel lesion map is average-pooled onto the ViT patch grid, giving each token the fraction
``w_n`` in ``[0, 1]`` of its patch covered by lesion evidence. Tokens ``t_n`` are then pooled::

    lesion_feat = sum_n w_n t_n / max(sum_n w_n, eps)
    normal_feat = sum_n (1 - w_n) t_n / max(sum_n (1 - w_n), eps)

so each is an exact weighted mean whenever its weight mass is at least ``eps``. An all-zero map gives
``lesion_feat = 0`` (and ``normal_feat`` = mean token); an all-one map gives ``normal_feat = 0``.
Such degenerate features carry no gradient signal of their own; the loss
(:class:`~radlas_monai.losses.contrastive.LesionDiscriminationLoss`) only uses ``lesion_feat`` as an
anchor for images whose *synthetic* mask is non-empty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["token_lesion_weights", "lesion_weighted_pooling"]


def token_lesion_weights(lesion_map: torch.Tensor, grid: tuple[int, int] | list[int]) -> torch.Tensor:
    """Per-token lesion fraction: ``lesion_map`` average-pooled to ``grid``, flattened row-major.

    Args:
        lesion_map: ``(B, 1, H, W)`` with values in ``[0, 1]`` (a lesion map or a synthetic mask);
            ``H`` and ``W`` must be multiples of ``grid``.
        grid: token grid ``(gh, gw)``.

    Returns:
        ``(B, gh * gw)`` weights in ``[0, 1]``, in the same token order as the ViT.

    Raises:
        ValueError: when the map is not ``(B, 1, H, W)`` or not divisible by ``grid``.
    """
    gh, gw = int(grid[0]), int(grid[1])
    if lesion_map.ndim != 4 or lesion_map.shape[1] != 1:
        raise ValueError(f"expected lesion_map of shape (B, 1, H, W), got {tuple(lesion_map.shape)}")
    h, w = lesion_map.shape[-2:]
    if gh < 1 or gw < 1 or h % gh or w % gw:
        raise ValueError(f"lesion_map size {(h, w)} must be a multiple of the token grid {(gh, gw)}")
    pooled = F.avg_pool2d(lesion_map, kernel_size=(h // gh, w // gw))
    return pooled.flatten(1)


def lesion_weighted_pooling(
    tokens: torch.Tensor,
    lesion_map: torch.Tensor,
    grid: tuple[int, int] | list[int],
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pool patch tokens under a lesion map and under its complement.

    Args:
        tokens: ViT patch tokens ``(B, N, D)`` with ``N = gh * gw`` (row-major).
        lesion_map: ``(B, 1, H, W)`` in ``[0, 1]``.
        grid: token grid ``(gh, gw)``.
        eps: smallest weight mass normalised exactly (below it the feature fades to zero).

    Returns:
        ``(lesion_feat (B, D), normal_feat (B, D), lesion_weight (B, N))`` where ``lesion_weight`` is the
        un-normalised per-token lesion fraction from :func:`token_lesion_weights`.

    Raises:
        ValueError: on mismatched shapes or a non-positive ``eps``.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if tokens.ndim != 3 or tokens.shape[0] != lesion_map.shape[0]:
        raise ValueError(
            f"expected tokens (B, N, D) with the batch of lesion_map {tuple(lesion_map.shape)}, got "
            f"{tuple(tokens.shape)}"
        )
    weight = token_lesion_weights(lesion_map, grid)
    if weight.shape[1] != tokens.shape[1]:
        raise ValueError(f"token grid {tuple(grid)} has {weight.shape[1]} cells but tokens have N={tokens.shape[1]}")
    weight = weight.to(tokens.dtype)
    normal = 1.0 - weight
    lesion_feat = torch.einsum("bn,bnd->bd", weight, tokens) / weight.sum(1, keepdim=True).clamp_min(eps)
    normal_feat = torch.einsum("bn,bnd->bd", normal, tokens) / normal.sum(1, keepdim=True).clamp_min(eps)
    return lesion_feat, normal_feat, weight
