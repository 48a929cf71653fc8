"""Patchy airspace opacities (consolidation / infiltrate-like): fluffy, ill-defined, confluent clusters."""

from __future__ import annotations

import numpy as np
import torch

from radlas_monai.transforms.lesion_synthesis.families.base import (
    LesionFamily,
    LesionPatches,
    log_uniform,
    screen_density,
    uniform,
)
from radlas_monai.transforms.lesion_synthesis.shapes import ellipse_frame, rotated_coords, smoothstep

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

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        reach = log_uniform(params[:, 0], self.diameter) / 2 * (1.0 + 1.5 * _OUTLINE)
        return np.stack((reach, reach), axis=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = patches.params
        radius = log_uniform(p[:, 0], self.diameter) / 2
        minor = radius * uniform(p[:, 1], self.aspect)
        angle = p[:, 2] * np.pi
        cos_a, sin_a, cos_b, sin_b, threshold, softness, contrast = patches.per_lesion(
            *ellipse_frame(radius, minor, angle),
            uniform(p[:, 4], self.threshold),
            uniform(p[:, 5], self.softness),
            uniform(p[:, 3], self.contrast),
        )
        u, v = rotated_coords(patches.dy, patches.dx, torch.cat((cos_a, sin_a, cos_b, sin_b), dim=1))
        outline = patches.noise(generator, radius, extent=1.4, grid=12)
        rho = torch.sqrt(u * u + v * v) / (1.0 + _OUTLINE * outline.clamp(-1.5, 1.5))
        region = smoothstep((1.0 - rho) / 0.5)
        # the texture has an absolute scale (acinar / lobular clusters), independent of the region's size
        feature = uniform(p[:, 6], self.feature)
        texture = patches.noise(generator, feature, extent=_TEXTURE_CELLS / 2, grid=_TEXTURE_CELLS, channels=2)
        alpha = region * smoothstep((texture[:, :1] - threshold) / softness + 0.5)
        density = (contrast * (1.0 + 0.25 * texture[:, 1:2])).clamp_(0.0, 1.0)
        return alpha, screen_density(patches.healthy, density)
