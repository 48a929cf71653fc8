"""Grounding: from (input, restored) to a pixel-wise lesion map.

:func:`lesion_map` is THE definition of the RadLAS lesion map; training, evaluation and inference
all import it. :class:`GroundingHead` is the small learned discriminative head (DRAEM-style: Zavrtanik
et al., "DRAEM - A discriminatively trained reconstruction embedding for surface anomaly detection",
ICCV 2021) that reads ``concat(image, restored, |image - restored|)`` and emits lesion logits. It is
trained on the synthetic lesion masks; measured on real JSRT nodules, the raw residual alone is
dominated by rib and vessel edges, the learned head carries the signal.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import UnetBasicBlock, UnetOutBlock, UnetUpBlock

__all__ = ["lesion_map", "fixed_contrast", "gaussian_smooth", "GroundingHead"]


def _check_pair(image: torch.Tensor, restored: torch.Tensor) -> None:
    if torch.jit.is_tracing():  # shapes are symbolic while tracing
        return
    if image.ndim != 4 or image.shape[1] != 1 or image.shape != restored.shape:
        raise ValueError(
            f"expected image and restored of equal shape (B, 1, H, W), got {tuple(image.shape)} and "
            f"{tuple(restored.shape)}"
        )


def gaussian_smooth(x: torch.Tensor, sigma: float, truncated: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` maps with replicate padding; ``sigma`` in pixels.

    ``sigma <= 0`` returns ``x`` unchanged. The kernel sums to one, so constant maps are preserved.
    """
    if sigma <= 0:
        return x
    radius = max(1, int(truncated * sigma + 0.5))
    radius = min(radius, x.shape[-2] - 1, x.shape[-1] - 1)
    coords = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def fixed_contrast(
    image: torch.Tensor, restored: torch.Tensor, *, smooth: float = 2.0, contrast_scale: float = 0.1
) -> torch.Tensor:
    """The normalised fixed contrast ``tanh(G_smooth * |image - restored| / contrast_scale)``.

    A fixed (not per-image) normalisation keeps maps comparable across images: healthy images with
    a faithful restoration stay near 0, a residual of ``contrast_scale`` maps to ``tanh(1) = 0.76``.

    Args:
        image: input radiographs ``(B, 1, H, W)`` in ``[0, 1]``.
        restored: restored healthy images ``(B, 1, H, W)``.
        smooth: Gaussian sigma in pixels applied to ``|image - restored|`` (0 disables).
        contrast_scale: residual magnitude mapped to ``tanh(1)``; must be positive.

    Returns:
        ``(B, 1, H, W)`` in ``[0, 1)``.
    """
    _check_pair(image, restored)
    if contrast_scale <= 0:
        raise ValueError(f"contrast_scale must be positive, got {contrast_scale}")
    return torch.tanh(gaussian_smooth((image - restored).abs(), smooth) / contrast_scale)


def lesion_map(
    image: torch.Tensor,
    restored: torch.Tensor,
    grounding_logits: torch.Tensor | None = None,
    *,
    contrast_weight: float = 0.0,
    smooth: float = 2.0,
    contrast_scale: float = 0.1,
) -> torch.Tensor:
    """The RadLAS lesion map, in ``[0, 1]``, 1 = lesion evidence.

    With the learned head's logits ``z``::

        map = (1 - w) * sigmoid(z) + w * tanh(G_smooth * |image - restored| / contrast_scale)

    with ``w = contrast_weight`` (default 0: the learned head alone). Without logits (no head, e.g.
    the reconstruction-only baseline) the map is the fixed contrast term alone, whatever ``w``.
    A pure function: no state, no randomness; gradients flow to all inputs (detach at the caller).

    Args:
        image: input radiographs ``(B, 1, H, W)``.
        restored: restored healthy images ``(B, 1, H, W)``.
        grounding_logits: optional logits ``(B, 1, H, W)`` of :class:`GroundingHead`.
        contrast_weight: ``w`` in ``[0, 1]``.
        smooth: Gaussian sigma (pixels) of the contrast term (0 disables).
        contrast_scale: normalisation of the contrast term, see :func:`fixed_contrast`.

    Returns:
        lesion map ``(B, 1, H, W)`` in ``[0, 1]``.

    Raises:
        ValueError: on mismatched shapes or ``contrast_weight`` outside ``[0, 1]``.
    """
    _check_pair(image, restored)
    if not 0.0 <= contrast_weight <= 1.0:
        raise ValueError(f"contrast_weight must be in [0, 1], got {contrast_weight}")
    if grounding_logits is None:
        return fixed_contrast(image, restored, smooth=smooth, contrast_scale=contrast_scale)
    if not torch.jit.is_tracing() and grounding_logits.shape != image.shape:
        raise ValueError(f"grounding_logits {tuple(grounding_logits.shape)} must match image {tuple(image.shape)}")
    learned = torch.sigmoid(grounding_logits)
    if contrast_weight == 0.0:
        return learned
    contrast = fixed_contrast(image, restored, smooth=smooth, contrast_scale=contrast_scale)
    return (1.0 - contrast_weight) * learned + contrast_weight * contrast


class GroundingHead(nn.Module):
    """Small U-Net reading ``concat(image, restored, |image - restored|)`` -> lesion logits.

    Three levels at ``1/shuffle``, ``1/(2 shuffle)``, ``1/(4 shuffle)`` resolution with
    ``features * (1, 2, 4)`` channels, built from MONAI ``UnetBasicBlock`` / ``UnetUpBlock`` /
    ``UnetOutBlock``. With ``shuffle=2`` (default) the 3-channel input is folded by
    ``pixel_unshuffle(2)`` into 12 channels at half resolution (no full-resolution convolutions) and the
    1-channel logits are bilinearly upsampled back; the receptive field is then ~90 px, enough to
    compare a lesion with its surroundings at 256 px. The output bias starts at ``prior_logit``
    (default ``-4.6``, ``sigmoid = 0.01``), the usual prior for a rare foreground (Lin et al., 2017).

    Args:
        features: channels of the finest level.
        shuffle: 1 (full resolution) or 2.
        norm_name: MONAI norm name; ``"batch"`` (default, as DRAEM) keeps absolute contrast levels
            so that lesion-free images can map to all-background, per-image norms do not.
        prior_logit: initial output bias.

    Shapes: ``image``, ``restored`` ``(B, 1, H, W)`` with ``H, W`` divisible by ``4 * shuffle``
    -> logits ``(B, 1, H, W)``.
    """

    def __init__(
        self, features: int = 8, shuffle: int = 2, norm_name: tuple | str = "batch", prior_logit: float = -4.6
    ) -> None:
        super().__init__()
        if shuffle not in (1, 2) or features < 1:
            raise ValueError(f"need shuffle in (1, 2) and features >= 1, got shuffle={shuffle}, features={features}")
        f = features
        self.shuffle = shuffle
        self.enc0 = UnetBasicBlock(2, 3 * shuffle**2, f, 3, 1, norm_name)
        self.enc1 = UnetBasicBlock(2, f, 2 * f, 3, 2, norm_name)
        self.enc2 = UnetBasicBlock(2, 2 * f, 4 * f, 3, 2, norm_name)
        self.up1 = UnetUpBlock(2, 4 * f, 2 * f, 3, 1, 2, norm_name)
        self.up0 = UnetUpBlock(2, 2 * f, f, 3, 1, 2, norm_name)
        self.out = UnetOutBlock(2, f, 1)
        nn.init.constant_(self.out.conv.conv.bias, prior_logit)

    def forward(self, image: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
        """Lesion logits ``(B, 1, H, W)`` for ``image`` versus its ``restored`` healthy counterpart."""
        _check_pair(image, restored)
        step = 4 * self.shuffle
        if not torch.jit.is_tracing() and (image.shape[-2] % step or image.shape[-1] % step):
            raise ValueError(f"GroundingHead needs H and W divisible by {step}, got {tuple(image.shape)}")
        x = torch.cat([image, restored, (image - restored).abs()], dim=1)
        if self.shuffle > 1:
            x = F.pixel_unshuffle(x, self.shuffle)
        x0 = self.enc0(x)
        x1 = self.enc1(x0)
        logits = self.out(self.up0(self.up1(self.enc2(x1), x1), x0))
        if self.shuffle > 1:
            logits = F.interpolate(logits, scale_factor=float(self.shuffle), mode="bilinear", align_corners=False)
        return logits
