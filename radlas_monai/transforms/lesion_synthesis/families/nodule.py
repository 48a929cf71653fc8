"""Round pulmonary nodules and masses: dense, soft-edged, lobulated, with internal texture."""

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
from radlas_monai.transforms.lesion_synthesis.shapes import ellipse_frame, rotated_coords, smoothstep, sphere_profile

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
    with a second noise channel (internal texture), so ribs and vessels stay visible through the nodule. With the
    default contrast the added contrast of nodules on JSRT radiographs (median 0.069 of the grey range) matches that
    of the real JSRT nodules (median 0.065; disc versus surrounding ring).

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
        contrast: tuple[float, float] = (0.04, 0.24),
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

    def _shape(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diameter = log_uniform(params[:, 0], self.diameter)
        lobulation = np.clip(uniform(params[:, 5], self.lobulation) * np.sqrt(diameter / 30.0), 0.0, 0.3)
        return diameter, lobulation

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        diameter, lobulation = self._shape(params)
        reach = diameter / 2 * (1.0 + _NOISE_CLIP * lobulation)
        return np.stack((reach, reach), axis=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = patches.params
        diameter, lobulation = self._shape(p)
        radius = diameter / 2
        minor = radius * uniform(p[:, 1], self.aspect)
        angle = p[:, 2] * np.pi
        edge = np.maximum(uniform(p[:, 7], self.edge), 1.0 / radius)
        contrast = np.minimum(uniform(p[:, 3], self.contrast) * np.sqrt(diameter / 20.0), 0.7)
        cos_a, sin_a, cos_b, sin_b, lob, sharp, edge, contrast, tex = patches.per_lesion(
            *ellipse_frame(radius, minor, angle),
            lobulation,
            uniform(p[:, 4], self.sharpness),
            edge,
            contrast,
            uniform(p[:, 6], self.texture),
        )
        u, v = rotated_coords(patches.dy, patches.dx, torch.cat((cos_a, sin_a, cos_b, sin_b), dim=1))
        noise = patches.noise(generator, radius, extent=1.6, channels=2)
        rho = torch.sqrt(u * u + v * v) / (1.0 + lob * noise[:, :1].clamp(-_NOISE_CLIP, _NOISE_CLIP))
        alpha = sphere_profile(rho, sharp) * smoothstep((1.0 - rho) / edge)
        density = (contrast * (1.0 + tex * noise[:, 1:2])).clamp_(0.0, 1.0)
        return alpha, screen_density(patches.healthy, density)
