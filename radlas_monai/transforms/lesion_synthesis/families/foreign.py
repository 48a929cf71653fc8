"""Foreign-patch blends: a region of another radiograph pasted through a soft, irregular mask."""

from __future__ import annotations

import numpy as np
import torch

from radlas_monai.transforms.lesion_synthesis.families.base import LesionFamily, LesionPatches, log_uniform, uniform
from radlas_monai.transforms.lesion_synthesis.poisson import poisson_blend
from radlas_monai.transforms.lesion_synthesis.shapes import ellipse_frame, rotated_coords, smoothstep

__all__ = ["ForeignPatchFamily"]

_OUTLINE = 0.25


class ForeignPatchFamily(LesionFamily):
    """Natural-looking out-of-place tissue: pixels of a *donor* region blended in with a soft mask.

    The donor pixels come from another radiograph of the batch, from a ``foreign`` image given to the transform, or
    (single image without ``foreign``) from a horizontally flipped, shifted region of the same image. They are
    blended in the gradient domain (:func:`~radlas_monai.transforms.lesion_synthesis.poisson.poisson_blend`, as NSA:
    Schlueter et al., ECCV 2022): the donor's structure (wrong ribs, vessels at the wrong angle) comes along, its
    brightness level and slope do not, so the patch is betrayed by its structure and never by a brightness step at
    its edge (hard pasting, CutPaste / FPI, teaches exactly that step and stays at chance on real radiographs).
    ``match`` weighs the Poisson result against the donor moved to the recipient's mean (1, the default: pure
    gradient-domain blending).

    Args:
        diameter: range of the long diameter in mm (pixels when the spacing is unknown), log-uniform.
        opacity: range of the blend's peak opacity.
        aspect: range of the short/long axis ratio.
        edge: range of the soft edge's width as a fraction of the radius.
        match: range of the weight of the gradient-domain result against the mean-shifted donor (1 = pure
            Poisson blending, the default; 0 = the donor moved to the recipient's mean).
    """

    name = "foreign_patch"
    needs_donor = True

    def __init__(
        self,
        diameter: tuple[float, float] = (10.0, 60.0),
        opacity: tuple[float, float] = (0.6, 1.0),
        aspect: tuple[float, float] = (0.6, 1.0),
        edge: tuple[float, float] = (0.2, 0.7),
        match: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if not 0 < diameter[0] <= diameter[1]:
            raise ValueError(f"foreign patch diameter range must satisfy 0 < low <= high, got {diameter}")
        self.diameter = diameter
        self.opacity = opacity
        self.aspect = aspect
        self.edge = edge
        self.match = match

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        reach = log_uniform(params[:, 0], self.diameter) / 2 * (1.0 + 1.5 * _OUTLINE)
        return np.stack((reach, reach), axis=1)

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if patches.donor is None:
            raise ValueError("the foreign_patch family needs donor pixels, got patches.donor=None")
        p = patches.params
        radius = log_uniform(p[:, 0], self.diameter) / 2
        minor = radius * uniform(p[:, 2], self.aspect)
        angle = p[:, 3] * np.pi
        cos_a, sin_a, cos_b, sin_b, edge, opacity, match = patches.per_lesion(
            *ellipse_frame(radius, minor, angle),
            uniform(p[:, 4], self.edge),
            uniform(p[:, 1], self.opacity),
            uniform(p[:, 5], self.match),
        )
        u, v = rotated_coords(patches.dy, patches.dx, torch.cat((cos_a, sin_a, cos_b, sin_b), dim=1))
        outline = patches.noise(generator, radius, extent=1.5)
        rho = torch.sqrt(u * u + v * v) / (1.0 + _OUTLINE * outline.clamp(-1.5, 1.5))
        alpha = opacity * smoothstep((1.0 - rho) / edge)
        weight = alpha / alpha.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        shifted = patches.donor + ((patches.healthy - patches.donor) * weight).sum(dim=(2, 3), keepdim=True)
        blended = poisson_blend(patches.healthy, patches.donor)
        return alpha, torch.lerp(shifted, blended, match).clamp_(0.0, 1.0)
