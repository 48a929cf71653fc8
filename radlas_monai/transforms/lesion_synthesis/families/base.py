"""The interface every lesion family implements, and the patch bundle it renders into.

A family never sees whole images. :class:`~radlas_monai.transforms.lesion_synthesis.array.RandLesionSynthesis` cuts a
patch around every lesion of the batch (all lesions of one family share one patch size), hands the family a
:class:`LesionPatches` with the healthy pixels, the lung field and per-lesion random draws, and the family returns a
soft opacity ``alpha`` and a fully lesioned ``target`` for every patch. The transform composes
``healthy + alpha * (target - healthy)`` back into the images, so a family only has to describe *what* a lesion looks
like, in millimetres, with batched torch operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

__all__ = ["LesionPatches", "LesionFamily", "uniform", "log_uniform", "screen_density"]


@dataclass
class LesionPatches:
    """Pixels around ``N`` lesions of one family, cut from a batch of radiographs.

    Attributes:
        healthy: ``(N, C, Ph, Pw)`` healthy intensities in [0, 1] (edge pixels repeated where the patch leaves the
            image; those are masked out afterwards).
        lung: ``(N, 1, Ph, Pw)`` soft, slightly dilated lung field in [0, 1] (1 inside the lung).
        lung_core: ``(N, 1, Ph, Pw)`` the undilated binary lung field (1 inside the lung), for families that must
            stay strictly inside it.
        dy: ``(N, 1, Ph, 1)`` row offset of every patch row from the lesion centre, in mm (positive = down).
        dx: ``(N, 1, 1, Pw)`` column offset of every patch column from the lesion centre, in mm (positive = right).
        params: ``(N, K)`` the family's own uniform draws in [0, 1) (``K = RandLesionSynthesis.family_params``).
        spacing: ``(N, 2)`` pixel spacing ``(row, col)`` in mm (1.0 when sizes are read in pixels).
        side_box: ``(N, 4)`` the lesion's lung side relative to its centre, in mm: ``(top, bottom)`` as row offsets
            and ``(medial, lateral)`` as offsets along ``lateral_sign * dx``.
        lateral_sign: ``(N, 1, 1, 1)`` +1 where the lesion's lung lies on the image's right half (lateral = +x), else -1.
        donor: ``(N, C, Ph, Pw)`` pixels of another radiograph (or another region) for the foreign-patch family, else
            None.
    """

    healthy: torch.Tensor
    lung: torch.Tensor
    lung_core: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor
    params: torch.Tensor
    spacing: torch.Tensor
    side_box: torch.Tensor
    lateral_sign: torch.Tensor
    donor: torch.Tensor | None = None

    @property
    def num(self) -> int:
        """Number of lesions ``N``."""
        return int(self.healthy.shape[0])


def uniform(u: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Map uniform draws in [0, 1) linearly onto ``[low, high)``."""
    low, high = bounds
    return low + (high - low) * u


def log_uniform(u: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Map uniform draws in [0, 1) onto ``[low, high)`` uniformly in log scale (sizes: small lesions are common)."""
    low, high = (float(b) for b in bounds)
    return low * (high / low) ** u


def screen_density(healthy: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    """Add radiographic density: ``h + d * (1 - h)``, brighter where the tissue was dark, never above 1.

    This is the "screen" blend: a dense lesion brightens the dark aerated lung much more than an already bright rib or
    the mediastinum, as extra attenuation does on a windowed radiograph near saturation.

    Args:
        healthy: intensities in [0, 1].
        density: opacity of the added tissue, broadcastable; clamped to [0, 1].

    Returns:
        Intensities in [0, 1].
    """
    return healthy + density.clamp(0.0, 1.0) * (1.0 - healthy)


class LesionFamily:
    """Base class of the lesion families.

    Subclasses set :attr:`name` and :attr:`placement`, and implement :meth:`half_extent` and :meth:`render`; families
    placed relative to a lung side (``placement = "side"``) also implement :meth:`anchor`. All methods are batched
    over ``N`` lesions and draw their parameters from ``params`` only.
    """

    #: The family's name, an entry of ``LESION_FAMILIES``.
    name: ClassVar[str] = ""
    #: ``"lung"``: centres sampled uniformly inside the lung fields; ``"side"``: placed by :meth:`anchor`.
    placement: ClassVar[str] = "lung"
    #: Whether the family needs donor pixels from another radiograph.
    needs_donor: ClassVar[bool] = False

    def half_extent(self, params: torch.Tensor, side_size: torch.Tensor) -> torch.Tensor:
        """Half size ``(rows, cols)`` in mm of each lesion's support around its centre.

        Args:
            params: ``(N, K)`` uniform draws.
            side_size: ``(N, 2)`` height and width in mm of the lesion's lung side.

        Returns:
            ``(N, 2)`` half extents in mm; ``alpha`` must be exactly 0 beyond them.
        """
        raise NotImplementedError

    def anchor(self, params: torch.Tensor, side_box: torch.Tensor) -> torch.Tensor:
        """Centre of each lesion relative to the centre of its lung side box (``"side"`` placement only).

        Args:
            params: ``(N, K)`` uniform draws.
            side_box: ``(N, 4)`` the side box relative to the box centre in mm: ``(top, bottom, medial, lateral)``.

        Returns:
            ``(N, 2)`` offsets ``(row, lateral)`` in mm from the box centre.
        """
        raise NotImplementedError(f"lesion family {self.name!r} is not placed relative to a lung side")

    def render(self, patches: LesionPatches, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw the lesions.

        Args:
            patches: the pixels and draws of ``N`` lesions.
            generator: the only source of texture noise, on the patches' device.

        Returns:
            ``(alpha, target)``: ``alpha`` ``(N, 1, Ph, Pw)`` in [0, 1], exactly 0 outside the lesion; ``target``
            ``(N, C, Ph, Pw)`` in [0, 1], the patch fully replaced by lesion.
        """
        raise NotImplementedError
