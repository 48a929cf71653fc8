"""Basal effusion-like opacity: a homogeneous density at the lung base with a meniscus-shaped upper border."""

from __future__ import annotations

import numpy as np
import torch

from radlas_monai.transforms.lesion_synthesis.families.base import (
    LesionFamily,
    LesionPatches,
    screen_density,
    uniform,
)
from radlas_monai.transforms.lesion_synthesis.shapes import smoothstep

__all__ = ["EffusionFamily"]

_MARGIN = 0.05  # extra patch height above and below the fluid, as a fraction of the lung height


class EffusionFamily(LesionFamily):
    """Pleural-effusion-like opacity filling one lung base.

    On an upright PA film free fluid collects at the base, blunts the costophrenic angle first, and its upper border
    is a meniscus, concave upwards: higher at the lateral chest wall than medially. Here the fluid surface rises from
    ``h0`` above the lowest point of the lung side (medially) to ``h0 * (1 + meniscus)`` at its lateral edge, the
    border is soft, and the density is homogeneous, slightly increasing towards the base. Because the lung field is
    lowest laterally (costophrenic angle) and domed medially, small effusions appear as a blunted lateral angle and
    large ones as a basal white-out, as on real films.

    Args:
        height: range of ``h0`` as a fraction of the lung side's height.
        meniscus: range of the relative extra height at the lateral wall.
        contrast: range of the added density (0..1).
        edge: range of the upper border's width as a fraction of ``h0``.
    """

    name = "effusion"
    placement = "side"

    def __init__(
        self,
        height: tuple[float, float] = (0.06, 0.3),
        meniscus: tuple[float, float] = (0.3, 1.5),
        contrast: tuple[float, float] = (0.3, 0.75),
        edge: tuple[float, float] = (0.15, 0.5),
    ) -> None:
        self.height = height
        self.meniscus = meniscus
        self.contrast = contrast
        self.edge = edge

    def _fluid(self, params: np.ndarray, side_height: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h0 = uniform(params[:, 0], self.height) * side_height
        edge = uniform(params[:, 3], self.edge) * h0
        top = h0 * (1.0 + uniform(params[:, 1], self.meniscus)) + edge / 2
        return h0, edge, top

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        _, _, top = self._fluid(params, side_size[:, 0])
        rows = top / 2 + _MARGIN * side_size[:, 0]
        return np.stack((rows, side_size[:, 1] / 2 * 1.05), axis=1)

    def anchor(self, params: np.ndarray, side_box: np.ndarray) -> np.ndarray:
        _, _, top = self._fluid(params, side_box[:, 1] - side_box[:, 0])
        return np.stack((side_box[:, 1] - top / 2, np.zeros_like(top)), axis=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p, box = patches.params, patches.side_box
        h0, edge, _ = self._fluid(p, box[:, 1] - box[:, 0])
        h0, edge, bottom, medial, width, sign, meniscus, contrast = patches.per_lesion(
            h0,
            edge,
            box[:, 1],
            box[:, 2],
            np.maximum(box[:, 3] - box[:, 2], 1e-3),
            patches.lateral_sign,
            uniform(p[:, 1], self.meniscus),
            uniform(p[:, 2], self.contrast),
        )
        height = bottom - patches.dy  # above the lowest point of the lung side
        across = ((patches.dx * sign - medial) / width).clamp_(0.0, 1.0)  # 0 medially, 1 at the lateral wall
        surface = h0 * (1.0 + meniscus * across * across)
        alpha = smoothstep((surface - height) / edge + 0.5)
        depth = (1.0 - height / surface).clamp_(0.0, 1.0)
        return alpha, screen_density(patches.healthy, contrast * (0.75 + 0.25 * depth))
