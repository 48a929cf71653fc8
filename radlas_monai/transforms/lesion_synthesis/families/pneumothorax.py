"""Apical / lateral pneumothorax-like lucency: a dark crescent without lung markings, bounded by a pleural line."""

from __future__ import annotations

import numpy as np
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
_PLEURA_MM = 0.5  # width of the visceral pleural line
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
        line_contrast: range of the pleural line's added density (0..1) when pixels are finer than 0.8 mm; coarser
            pixels spread the ~0.5 mm line over more width at a proportionally lower peak.
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

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        rows = uniform(params[:, 2], self.extent) * side_size[:, 0] / 2 + _MARGIN * side_size[:, 0]
        return np.stack((rows, side_size[:, 1] / 2 * 1.05), axis=1)

    def anchor(self, params: np.ndarray, side_box: np.ndarray) -> np.ndarray:
        extent = uniform(params[:, 2], self.extent) * (side_box[:, 1] - side_box[:, 0])
        return np.stack((side_box[:, 0] + extent / 2, np.zeros_like(extent)), axis=1)

    def _collapsed_lung(self, patches: LesionPatches) -> list[torch.Tensor]:
        """Centre ``(row, lateral)`` and inverse semi-axes of the collapsed lung's ellipse, per lesion."""
        p, box = patches.params, patches.side_box
        sy, sx = (box[:, 1] - box[:, 0]) / 2, (box[:, 3] - box[:, 2]) / 2
        w_lat = uniform(p[:, 0], self.width) * 2 * sx
        w_api = np.minimum(w_lat * uniform(p[:, 1], self.apical_ratio), sy)
        ay, ax = np.maximum(sy - w_api / 2, 1e-3), np.maximum(sx - w_lat / 2, 1e-3)
        cy = (box[:, 0] + box[:, 1]) / 2 + w_api / 2
        cx = (box[:, 2] + box[:, 3]) / 2 - w_lat / 2
        return patches.per_lesion(cy, cx, 1.0 / ay, 1.0 / ax, patches.lateral_sign)

    def _boundary_distance(self, patches: LesionPatches) -> torch.Tensor:
        """Approximate signed distance in mm to the collapsed lung's border (positive = in the air space)."""
        cy, cx, inv_y, inv_x, sign = self._collapsed_lung(patches)
        y = (patches.dy - cy) * inv_y
        x = (patches.dx * sign - cx) * inv_x
        level = y * y + x * x - 1.0
        grad = 2.0 * torch.sqrt((y * inv_y) ** 2 + (x * inv_x) ** 2).clamp_(min=1e-6)
        return level / grad

    def _local_lung_mean(self, patches: LesionPatches) -> torch.Tensor:
        """Mean healthy lung intensity over ~6 mm (normalised convolution: pixels outside the lung do not bleed in)."""
        size = patches.healthy.shape[-2:]
        cell = max(2, int(round(_MEAN_SCALE_MM / float(patches.spacing.mean()))))
        cell = min(cell, max(1, min(size) // 2))
        lung = patches.lung_core
        total = F.avg_pool2d(patches.healthy * lung, cell, ceil_mode=True)
        frac = F.avg_pool2d(lung, cell, ceil_mode=True)
        total = F.interpolate(total, size=size, mode="bilinear", align_corners=False)
        frac = F.interpolate(frac, size=size, mode="bilinear", align_corners=False)
        return torch.where(frac > 1e-3, total / frac.clamp_min(1e-3), patches.healthy)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p, box = patches.params, patches.side_box
        mm = patches.spacing.mean(axis=1)
        limit = box[:, 0] + uniform(p[:, 2], self.extent) * (box[:, 1] - box[:, 0])
        # the pleura is ~0.5 mm thick: coarser pixels spread it out and lower its peak (same integrated density)
        width = np.maximum(0.6 * mm, _PLEURA_MM)
        limit, inv_fade, inv_soft, inv_width, darkening, contrast = patches.per_lesion(
            limit,
            1.0 / (0.25 * np.maximum(limit - box[:, 0], 1e-3)),
            1.0 / (1.5 * mm),
            1.0 / width,
            uniform(p[:, 3], self.darkening),
            uniform(p[:, 4], self.line_contrast) * (_PLEURA_MM / width),
        )
        distance = self._boundary_distance(patches)
        extent = smoothstep((limit - patches.dy) * inv_fade) * patches.lung_core
        crescent = smoothstep(distance * inv_soft + 0.5) * extent
        scaled = distance * inv_width
        line = torch.exp(-(scaled.clamp(-6.0, 6.0) ** 2)) * extent * (scaled < 2.0)
        dark = self._local_lung_mean(patches) * (1.0 - darkening)
        bright = screen_density(patches.healthy, contrast)
        weight = (crescent + line).clamp_min(1e-6)
        target = (crescent * dark + line * bright) / weight
        return (crescent + line).clamp_(max=1.0), target
