"""Round pulmonary nodules and masses: dense, soft-edged, lobulated, with internal texture."""

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
from radlas_monai.transforms.lesion_synthesis.shapes import (
    rotated_coords,
    sample_field,
    smooth_noise,
    smoothstep,
    sphere_profile,
)

__all__ = ["NoduleFamily"]

_NOISE_CLIP = 1.5  # margin noise is clipped to +-1.5 sd, which bounds the support (see half_extent)


class NoduleFamily(LesionFamily):
    """Solid round opacities from small nodules to masses.

    The projected thickness of a ball is ``sqrt(1 - rho^2)``; the opacity is ``(1 - rho_m^2)^p`` with a random margin
    exponent ``p`` (0.5 = solid ball, larger = ill-defined margin), times a smoothstep over a margin band of at least
    1 mm (radiographic unsharpness), where ``rho_m`` is the elliptical radius with its margin modulated by smooth noise
    (lobulation, larger for larger lesions). The lesioned tissue is
    :func:`~radlas_monai.transforms.lesion_synthesis.families.base.screen_density` with a density that grows with the
    square root of the diameter (a thicker lesion attenuates more: small nodules are faint, masses dense) and varies
    with a second noise channel (internal texture), so ribs and vessels stay visible through the nodule.

    Args:
        diameter: range of the long diameter in mm (pixels when the spacing is unknown), drawn log-uniformly, so
            nodules (< 30 mm) are more common than masses.
        contrast: range of the added density at the centre of a 20 mm lesion (0..1, fraction of the remaining
            brightness headroom), scaled by ``sqrt(d / 20 mm)`` and capped at 0.7.
        sharpness: range of the margin exponent ``p``.
        edge: range of the margin band's width as a fraction of the radius (at least 1 mm).
        aspect: range of the short/long axis ratio.
        lobulation: range of the relative margin modulation for a 30 mm lesion (scaled by ``sqrt(d / 30 mm)``,
            capped at 0.3).
        texture: range of the relative internal density variation.
    """

    name = "nodule"

    def __init__(
        self,
        diameter: tuple[float, float] = (5.0, 60.0),
        contrast: tuple[float, float] = (0.08, 0.35),
        sharpness: tuple[float, float] = (0.5, 1.5),
        edge: tuple[float, float] = (0.1, 0.5),
        aspect: tuple[float, float] = (0.7, 1.0),
        lobulation: tuple[float, float] = (0.0, 0.18),
        texture: tuple[float, float] = (0.05, 0.3),
    ) -> None:
        if not 0 < diameter[0] <= diameter[1]:
            raise ValueError(f"nodule diameter range must satisfy 0 < low <= high, got {diameter}")
        self.diameter = diameter
        self.contrast = contrast
        self.sharpness = sharpness
        self.edge = edge
        self.aspect = aspect
        self.lobulation = lobulation
        self.texture = texture

    def _lobulation(self, params: torch.Tensor) -> torch.Tensor:
        diameter = log_uniform(params[:, 0], self.diameter)
        scale = (diameter / 30.0).sqrt()
        return (uniform(params[:, 5], self.lobulation) * scale).clamp(0.0, 0.3)

    def half_extent(self, params: torch.Tensor, side_size: torch.Tensor) -> torch.Tensor:
        radius = log_uniform(params[:, 0], self.diameter) / 2
        reach = radius * (1.0 + _NOISE_CLIP * self._lobulation(params))
        return torch.stack((reach, reach), dim=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = patches.params
        diameter = log_uniform(p[:, 0], self.diameter)
        radius = diameter / 2
        semi = torch.stack((radius, radius * uniform(p[:, 1], self.aspect)), dim=1)
        u, v = rotated_coords(patches.dy, patches.dx, semi, p[:, 2] * math.pi)
        r = radius.view(-1, 1, 1, 1)
        noise = smooth_noise(patches.num, 16, generator, u.device, channels=2)
        noise = sample_field(noise, patches.dx / r, patches.dy / r, scale=1.6)
        lob = self._lobulation(p).view(-1, 1, 1, 1)
        rho = torch.sqrt(u * u + v * v) / (1.0 + lob * noise[:, :1].clamp(-_NOISE_CLIP, _NOISE_CLIP))
        sharp = uniform(p[:, 4], self.sharpness).view(-1, 1, 1, 1)
        edge = torch.maximum(uniform(p[:, 7], self.edge), 1.0 / radius).view(-1, 1, 1, 1)
        alpha = sphere_profile(rho, sharp) * smoothstep((1.0 - rho) / edge)
        tex = uniform(p[:, 6], self.texture).view(-1, 1, 1, 1)
        contrast = (uniform(p[:, 3], self.contrast) * (diameter / 20.0).sqrt()).clamp(max=0.7)
        density = contrast.view(-1, 1, 1, 1) * (1.0 + tex * noise[:, 1:2])
        return alpha, screen_density(patches.healthy, density)
