"""Apical / lateral pneumothorax-like lucency: a dark crescent without lung markings, bounded by a pleural line."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from radlas_monai.transforms.lesion_synthesis.families.base import (
    LesionFamily,
    LesionPatches,
    screen_density,
    uniform,
)
from radlas_monai.transforms.lesion_synthesis.shapes import smoothstep

__all__ = ["PneumothoraxFamily"]

_MARGIN = 0.05  # extra patch height, as a fraction of the lung height
_MEAN_SCALE_MM = 6.0  # the lucent region is smoothed over about this scale: vessels vanish, ribs stay


class PneumothoraxFamily(LesionFamily):
    """Pneumothorax-like lucency along the apex and lateral wall of one lung.

    The collapsed lung is modelled as an ellipse inscribed in the lung side's box, shrunk by a rim width ``w`` at the
    apex and at the lateral wall and anchored medially and inferiorly, so the air space between it and the lung field
    is a crescent, widest at the apex and lateral wall and fading out towards the base. Inside the crescent the
    intensity is smoothed over ~6 mm (vascular markings vanish, ribs stay) and darkened by a random factor; the visceral
    pleural line, a thin bright line at the collapsed lung's edge, is drawn with a small contrast. The crescent stays
    strictly inside the (undilated) lung field.

    Args:
        width: range of the lateral rim width as a fraction of the lung side's width.
        apical_ratio: range of the apical rim width relative to the lateral one.
        extent: range of how far down from the apex the lucency reaches, as a fraction of the lung height.
        darkening: range of the relative darkening of the local mean inside the crescent.
        line_contrast: range of the pleural line's added density (0..1).
    """

    name = "pneumothorax"
    placement = "side"

    def __init__(
        self,
        width: tuple[float, float] = (0.04, 0.2),
        apical_ratio: tuple[float, float] = (0.7, 1.3),
        extent: tuple[float, float] = (0.4, 0.9),
        darkening: tuple[float, float] = (0.08, 0.35),
        line_contrast: tuple[float, float] = (0.05, 0.25),
    ) -> None:
        self.width = width
        self.apical_ratio = apical_ratio
        self.extent = extent
        self.darkening = darkening
        self.line_contrast = line_contrast

    def half_extent(self, params: torch.Tensor, side_size: torch.Tensor) -> torch.Tensor:
        rows = uniform(params[:, 2], self.extent) * side_size[:, 0] / 2 + _MARGIN * side_size[:, 0]
        return torch.stack((rows, side_size[:, 1] / 2 * 1.05), dim=1)

    def anchor(self, params: torch.Tensor, side_box: torch.Tensor) -> torch.Tensor:
        extent = uniform(params[:, 2], self.extent) * (side_box[:, 1] - side_box[:, 0])
        return torch.stack((side_box[:, 0] + extent / 2, torch.zeros_like(extent)), dim=1)

    def _boundary_distance(self, patches: LesionPatches) -> torch.Tensor:
        """Approximate signed distance in mm to the collapsed lung's border (positive = in the air space)."""
        p, box = patches.params, patches.side_box
        sy, sx = (box[:, 1] - box[:, 0]) / 2, (box[:, 3] - box[:, 2]) / 2
        w_lat = uniform(p[:, 0], self.width) * 2 * sx
        w_api = (w_lat * uniform(p[:, 1], self.apical_ratio)).clamp(max=sy)
        ay, ax = (sy - w_api / 2).view(-1, 1, 1, 1), (sx - w_lat / 2).view(-1, 1, 1, 1)
        cy = ((box[:, 0] + box[:, 1]) / 2 + w_api / 2).view(-1, 1, 1, 1)
        cx = ((box[:, 2] + box[:, 3]) / 2 - w_lat / 2).view(-1, 1, 1, 1)
        y = patches.dy - cy
        x = patches.dx * patches.lateral_sign - cx
        level = (y / ay) ** 2 + (x / ax) ** 2 - 1.0
        grad = 2.0 * torch.sqrt((y / ay**2) ** 2 + (x / ax**2) ** 2).clamp_min(1e-6)
        return level / grad

    def _local_lung_mean(self, patches: LesionPatches) -> torch.Tensor:
        """Mean healthy intensity of the lung over ~6 mm cells, interpolated back to the patch (markings removed)."""
        size = patches.healthy.shape[-2:]
        cell = max(2, int(round(_MEAN_SCALE_MM / float(patches.spacing.mean()))))
        cell = min(cell, max(1, min(size) // 2))
        lung = patches.lung_core
        total = F.avg_pool2d(patches.healthy * lung, cell, ceil_mode=True)
        frac = F.avg_pool2d(lung, cell, ceil_mode=True)
        plain = F.avg_pool2d(patches.healthy, cell, ceil_mode=True)
        mean = torch.where(frac > 0.05, total / frac.clamp_min(1e-6), plain)
        return F.interpolate(mean, size=size, mode="bilinear", align_corners=False)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p, box = patches.params, patches.side_box
        distance = self._boundary_distance(patches)
        mm = patches.spacing.mean(dim=1).view(-1, 1, 1, 1)
        limit = (box[:, 0] + uniform(p[:, 2], self.extent) * (box[:, 1] - box[:, 0])).view(-1, 1, 1, 1)
        fade = 0.25 * (limit - box[:, 0].view(-1, 1, 1, 1))
        extent = smoothstep((limit - patches.dy) / fade) * patches.lung_core
        crescent = smoothstep(distance / (1.5 * mm) + 0.5) * extent
        line = torch.exp(-((distance / (0.8 * mm)) ** 2)) * extent * (distance < 1.5 * mm)
        darkening = uniform(p[:, 3], self.darkening).view(-1, 1, 1, 1)
        dark = self._local_lung_mean(patches) * (1.0 - darkening)
        bright = screen_density(patches.healthy, uniform(p[:, 4], self.line_contrast).view(-1, 1, 1, 1))
        weight = (crescent + line).clamp_min(1e-6)
        target = (crescent * dark + line * bright) / weight
        return (crescent + line).clamp(max=1.0), target
