"""Patchy airspace opacities (consolidation / infiltrate-like): fluffy, ill-defined, confluent clusters."""

from __future__ import annotations

import math

import torch

from radlas_monai.transforms.lesion_synthesis.families.base import (
    LesionFamily,
    LesionPatches,
    log_uniform,
    screen_density,
    uniform,
)
from radlas_monai.transforms.lesion_synthesis.shapes import rotated_coords, sample_field, smooth_noise, smoothstep

__all__ = ["AirspaceOpacityFamily"]

_OUTLINE = 0.3  # relative outline modulation of the region; noise is clipped to +-1.5 sd
_TEXTURE_CELLS = 24  # lattice of the texture noise, in units of its feature size


class AirspaceOpacityFamily(LesionFamily):
    """Patchy airspace opacity: multi-octave smooth noise thresholded inside a soft, irregular region.

    The region is an ellipse whose outline is modulated by smooth noise and whose opacity fades towards its border;
    inside it, a multi-octave noise field of absolute feature size (mm) is passed through a soft threshold, so the
    opacity breaks up into confluent fluffy patches (lower threshold = more confluent). Density follows the
    :func:`~radlas_monai.transforms.lesion_synthesis.families.base.screen_density` blend, so the underlying anatomy
    stays visible.

    Args:
        diameter: range of the region's long diameter in mm (pixels when the spacing is unknown), log-uniform.
        contrast: range of the added density (0..1).
        aspect: range of the short/long axis ratio.
        threshold: range of the noise threshold in noise standard deviations (higher = patchier, sparser).
        softness: range of the threshold's transition width in noise standard deviations.
        feature: range of the finest texture feature size in mm (pixels when the spacing is unknown); coarser
            octaves reach 4x that, so clusters have the scale of acini and secondary lobules whatever the region's
            size.
    """

    name = "airspace_opacity"

    def __init__(
        self,
        diameter: tuple[float, float] = (30.0, 120.0),
        contrast: tuple[float, float] = (0.2, 0.55),
        aspect: tuple[float, float] = (0.5, 1.0),
        threshold: tuple[float, float] = (-1.0, 0.3),
        softness: tuple[float, float] = (0.7, 1.6),
        feature: tuple[float, float] = (5.0, 12.0),
    ) -> None:
        if not 0 < diameter[0] <= diameter[1]:
            raise ValueError(f"airspace opacity diameter range must satisfy 0 < low <= high, got {diameter}")
        self.diameter = diameter
        self.contrast = contrast
        self.aspect = aspect
        self.threshold = threshold
        self.softness = softness
        self.feature = feature

    def half_extent(self, params: torch.Tensor, side_size: torch.Tensor) -> torch.Tensor:
        reach = log_uniform(params[:, 0], self.diameter) / 2 * (1.0 + 1.5 * _OUTLINE)
        return torch.stack((reach, reach), dim=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = patches.params
        radius = log_uniform(p[:, 0], self.diameter) / 2
        semi = torch.stack((radius, radius * uniform(p[:, 1], self.aspect)), dim=1)
        u, v = rotated_coords(patches.dy, patches.dx, semi, p[:, 2] * math.pi)
        r = radius.view(-1, 1, 1, 1)
        outline = sample_field(smooth_noise(patches.num, 12, generator, u.device), patches.dx / r, patches.dy / r, 1.4)
        rho = torch.sqrt(u * u + v * v) / (1.0 + _OUTLINE * outline.clamp(-1.5, 1.5))
        region = smoothstep((1.0 - rho) / 0.5)
        # the patches' texture has an absolute scale (acinar / lobular clusters), independent of the region's size
        feature = uniform(p[:, 6], self.feature).view(-1, 1, 1, 1)
        texture = smooth_noise(patches.num, _TEXTURE_CELLS, generator, u.device, persistence=0.5, channels=2)
        texture = sample_field(texture, patches.dx / feature, patches.dy / feature, scale=_TEXTURE_CELLS / 2)
        threshold = uniform(p[:, 4], self.threshold).view(-1, 1, 1, 1)
        softness = uniform(p[:, 5], self.softness).view(-1, 1, 1, 1)
        alpha = region * smoothstep((texture[:, :1] - threshold) / softness + 0.5)
        density = uniform(p[:, 3], self.contrast).view(-1, 1, 1, 1) * (1.0 + 0.25 * texture[:, 1:2])
        return alpha, screen_density(patches.healthy, density)
