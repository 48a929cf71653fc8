"""Lean UNETR-style restoration decoder (Task I: restore the healthy radiograph).

Hatamizadeh et al., "UNETR: Transformers for 3D Medical Image Segmentation", WACV 2022, in 2D and
slimmed down for CPU throughput (measured, tiny preset at 256 px: the full-resolution layout,
``shuffle=1``, makes a whole pretraining step 1.8x slower):

* skips: ViT block outputs at 1/4, 2/4, 3/4 depth, lifted to 1/2, 1/4, 1/8 resolution by
  :class:`~monai.networks.blocks.UnetrPrUpBlock` with transposed convolutions only
  (``conv_block=False``), plus a conv stem (:class:`~monai.networks.blocks.UnetrBasicBlock`) on the
  input image;
* ``shuffle=2`` (default): the stem reads ``pixel_unshuffle(image, 2)`` and is added to the 1/2
  resolution skip, the residual leaves through ``pixel_shuffle(2)``; no convolution runs at full
  resolution (``shuffle=1`` restores UNETR's full-resolution level);
* widths ``feature_size * (1, 1, 2, 4)`` at ``1, 1/2, 1/4, 1/8`` resolution (UNETR: ``(1, 2, 4, 8)``);
* output: ``restored = clamp_st(image + residual)`` where ``residual`` comes from a zero-initialised
  1x1 :class:`~monai.networks.blocks.UnetOutBlock` (the untrained decoder is the identity) and
  ``clamp_st`` clamps the value to ``[0, 1]`` with a straight-through gradient (no dead gradients
  where the un-clamped prediction leaves the range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock

__all__ = ["RestorationDecoder", "straight_through_clamp"]


def straight_through_clamp(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Clamp the values of ``x`` to ``[low, high]`` while passing the gradient through unchanged."""
    return x + (x.clamp(low, high) - x).detach()


class RestorationDecoder(nn.Module):
    """Restore the healthy image from the corrupted input and multi-level ViT tokens.

    Args:
        hidden_size: ViT token width ``D``.
        grid_size: token grid ``(gh, gw)``; the image is ``(gh * patch_size, gw * patch_size)``.
        patch_size: ViT patch size, a power of two >= 8 (16 for every preset).
        in_channels: image channels.
        feature_size: channels of the finest decoder level (the plan is ``feature_size * (1, 1, 2, 4, ...)``
            at resolutions ``(1, 1/2, 1/4, 1/8, ...)``).
        shuffle: 1 or 2. With 2 (default) the finest level runs at 1/2 resolution: the stem reads the
            image through ``pixel_unshuffle(2)`` and the residual comes out through ``pixel_shuffle(2)``
            (Shi et al., CVPR 2016; the FFDNet layout, Zhang et al., TIP 2018), which removes all
            full-resolution convolutions. With 1 the decoder is UNETR's full-resolution layout.
        norm_name: MONAI norm name of the conv blocks (``"batch"``, ``"instance"``, ...).
        res_block: use residual conv blocks (UNETR's default is True; False is leaner).

    Inputs of :meth:`forward`: ``image (B, C, H, W)``, ``tokens (B, N, D)`` (final, normalised) and
    ``intermediates``: ``log2(patch_size) - 1`` block outputs ``(B, N, D)`` ordered shallow to deep.
    Output: restored image ``(B, C, H, W)`` in ``[0, 1]``.
    """

    def __init__(
        self,
        hidden_size: int,
        grid_size: Sequence[int],
        patch_size: int = 16,
        in_channels: int = 1,
        feature_size: int = 16,
        shuffle: int = 2,
        norm_name: tuple | str = "batch",
        res_block: bool = False,
    ) -> None:
        super().__init__()
        levels = int(round(math.log2(patch_size))) if patch_size > 0 else 0
        if patch_size < 8 or 2**levels != patch_size:
            raise ValueError(f"patch_size must be a power of two >= 8, got {patch_size}")
        if shuffle not in (1, 2):
            raise ValueError(f"shuffle must be 1 or 2, got {shuffle}")
        if feature_size < 1:
            raise ValueError(f"feature_size must be positive, got {feature_size}")
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.hidden_size = hidden_size
        self.shuffle = shuffle
        self.num_skips = levels - 1
        self.finest = shuffle // 2  # level index of the finest decoder level (resolution 1 / 2**finest)
        self.image_size = (self.grid_size[0] * patch_size, self.grid_size[1] * patch_size)
        widths = [feature_size * max(1, 2 ** (k - 1)) for k in range(levels)]  # level k: 1 / 2**k resolution
        self.widths = tuple(widths[self.finest :])
        self.stem = UnetrBasicBlock(2, in_channels * shuffle**2, widths[self.finest], 3, 1, norm_name, res_block)
        # skips[k-1] lifts the intermediate feeding level k (k = 1 .. levels-1; deeper k = deeper block)
        self.skips = nn.ModuleList(
            UnetrPrUpBlock(2, hidden_size, widths[k], levels - k - 1, 3, 1, 2, norm_name, False, False)
            for k in range(1, levels)
        )
        # ups[j] produces level (levels-1-j) from the level below it (j = 0 starts from the tokens)
        self.ups = nn.ModuleList(
            UnetrUpBlock(2, hidden_size if k == levels - 1 else widths[k + 1], widths[k], 3, 2, norm_name, res_block)
            for k in range(levels - 1, self.finest - 1, -1)
        )
        self.out = UnetOutBlock(2, widths[self.finest], in_channels * shuffle**2)
        nn.init.zeros_(self.out.conv.conv.weight)
        nn.init.zeros_(self.out.conv.conv.bias)

    def _to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, d = tokens.shape
        if not torch.jit.is_tracing() and (n != self.grid_size[0] * self.grid_size[1] or d != self.hidden_size):
            raise ValueError(
                f"expected tokens (B, {self.grid_size[0] * self.grid_size[1]}, {self.hidden_size}), "
                f"got {tuple(tokens.shape)}"
            )
        return tokens.transpose(1, 2).reshape(b, d, *self.grid_size)

    def residual(
        self, image: torch.Tensor, tokens: torch.Tensor, intermediates: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """The predicted correction ``(B, C, H, W)`` (unbounded; zero for the untrained decoder)."""
        if len(intermediates) != self.num_skips:
            raise ValueError(f"expected {self.num_skips} intermediate token maps, got {len(intermediates)}")
        if not torch.jit.is_tracing() and (image.ndim != 4 or tuple(image.shape[2:]) != self.image_size):
            raise ValueError(
                f"expected image (B, C, {self.image_size[0]}, {self.image_size[1]}), got {tuple(image.shape)}"
            )
        # skip_maps[k] feeds level k; level 0 exists only without pixel shuffle
        skip_maps = [torch.empty(0)] + [skip(self._to_grid(t)) for skip, t in zip(self.skips, intermediates)]
        stem = self.stem(F.pixel_unshuffle(image, self.shuffle) if self.shuffle > 1 else image)
        skip_maps[self.finest] = stem if self.finest == 0 else skip_maps[self.finest] + stem
        x = self._to_grid(tokens)
        for j, up in enumerate(self.ups):
            x = up(x, skip_maps[self.num_skips - j])
        x = self.out(x)
        return F.pixel_shuffle(x, self.shuffle) if self.shuffle > 1 else x

    def forward(self, image: torch.Tensor, tokens: torch.Tensor, intermediates: Sequence[torch.Tensor]) -> torch.Tensor:
        """Restored image ``clamp_st(image + residual)`` of shape ``(B, C, H, W)`` in ``[0, 1]``."""
        return straight_through_clamp(image + self.residual(image, tokens, intermediates))
