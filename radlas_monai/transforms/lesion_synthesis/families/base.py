"""The interface every lesion family implements, and the patch bundle it renders into.

A family never sees whole images. :class:`~radlas_monai.transforms.lesion_synthesis.array.RandLesionSynthesis` cuts a
patch around every lesion of the batch (lesions of one family and similar size share one patch size), hands the
family a :class:`LesionPatches` with the healthy pixels, the lung field and the per-lesion random draws, and the
family returns a soft opacity ``alpha`` and a fully lesioned ``target`` for every patch. The transform composes
``healthy + alpha * (target - healthy)`` back into the images, so a family only describes *what* a lesion looks like,
in millimetres.

Per-lesion numbers (sizes, contrasts, angles) are computed with numpy from ``params`` and uploaded with
:meth:`LesionPatches.per_lesion`; pixel work is done with torch on the patches' device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from radlas_monai.transforms.lesion_synthesis.shapes import interpolation_matrix, sample_field, smooth_noise

__all__ = ["LesionPatches", "LesionFamily", "uniform", "log_uniform", "screen_density", "upload"]


def upload(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """A float32 tensor on ``device`` from a numpy array (zero-copy on the CPU)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


@dataclass
class LesionPatches:
    """Pixels around ``N`` lesions of one family, cut from a batch of radiographs.

    Attributes:
        healthy: ``(N, C, Ph, Pw)`` healthy intensities in [0, 1].
        lung: ``(N, 1, Ph, Pw)`` soft, slightly dilated lung field in [0, 1] (1 inside the lung).
        lung_core: ``(N, 1, Ph, Pw)`` the undilated binary lung field, for families that must stay inside it.
        rows_mm: ``(N, Ph)`` numpy: row offset of every patch row from the lesion centre, in mm (positive = down).
        cols_mm: ``(N, Pw)`` numpy: column offset of every patch column from the lesion centre, in mm.
        params: ``(N, K)`` numpy: the family's own uniform draws in [0, 1).
        spacing: ``(N, 2)`` numpy: pixel spacing ``(row, col)`` in mm (1.0 when sizes are read in pixels).
        side_box: ``(N, 4)`` numpy: the lesion's lung side relative to its centre, in mm: ``(top, bottom)`` as row
            offsets and ``(medial, lateral)`` as offsets along ``lateral_sign * dx`` (zeros for lung placement).
        lateral_sign: ``(N,)`` numpy: +1 where the lesion's lung is in the image's right half (lateral = +x), else -1.
        donor: ``(N, C, Ph, Pw)`` pixels of another radiograph (or region) for the foreign-patch family, else None.
        dy: ``(N, 1, Ph, 1)`` tensor of ``rows_mm`` on the patches' device.
        dx: ``(N, 1, 1, Pw)`` tensor of ``cols_mm`` on the patches' device.
    """

    healthy: torch.Tensor
    lung: torch.Tensor
    lung_core: torch.Tensor
    rows_mm: np.ndarray
    cols_mm: np.ndarray
    params: np.ndarray
    spacing: np.ndarray
    side_box: np.ndarray
    lateral_sign: np.ndarray
    donor: torch.Tensor | None = None
    dy: torch.Tensor = field(init=False)
    dx: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.dy = upload(self.rows_mm, self.device)[:, None, :, None]
        self.dx = upload(self.cols_mm, self.device)[:, None, None, :]

    @property
    def num(self) -> int:
        """Number of lesions ``N``."""
        return int(self.healthy.shape[0])

    @property
    def device(self) -> torch.device:
        """The patches' device."""
        return self.healthy.device

    def per_lesion(self, *values: np.ndarray) -> list[torch.Tensor]:
        """Upload per-lesion numbers (each ``(N,)``) at once, as broadcastable ``(N, 1, 1, 1)`` tensors."""
        stacked = upload(np.stack([np.broadcast_to(v, (self.num,)) for v in values], axis=1), self.device)
        stacked = stacked[:, :, None, None]
        return [stacked[:, i : i + 1] for i in range(len(values))]

    def noise(
        self,
        generator: torch.Generator,
        scale_mm: np.ndarray,
        extent: float,
        grid: int = 16,
        channels: int = 1,
        persistence: float = 0.5,
    ) -> torch.Tensor:
        """Smooth multi-octave noise on the patches, with features proportional to ``scale_mm``.

        Args:
            generator: the only source of randomness, on the patches' device.
            scale_mm: ``(N,)`` length in mm that maps to one unit of the noise coordinates (e.g. the radius).
            extent: the noise lattice spans ``[-extent, extent]`` units; beyond it the border is repeated.
            grid: lattice size; the finest octave has ``grid / (2 * extent)`` features per unit.
            channels: independent noise channels.
            persistence: amplitude ratio of successive octaves.

        Returns:
            ``(N, channels, Ph, Pw)`` noise with unit standard deviation (in expectation).
        """
        field = smooth_noise(self.num, grid, generator, self.device, persistence=persistence, channels=channels)
        scale = np.asarray(scale_mm, dtype=np.float64)[:, None]
        weights_y = upload(interpolation_matrix(self.rows_mm / scale, grid, extent), self.device)
        weights_x = upload(interpolation_matrix(self.cols_mm / scale, grid, extent), self.device)
        return sample_field(field, weights_y, weights_x)


def uniform(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Map uniform draws in [0, 1) linearly onto ``[low, high)``."""
    low, high = (float(b) for b in bounds)
    return low + (high - low) * u


def log_uniform(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Map uniform draws in [0, 1) onto ``[low, high)`` uniformly in log scale (sizes: small lesions are common)."""
    low, high = (float(b) for b in bounds)
    return low * (high / low) ** u


def screen_density(healthy: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    """Add radiographic density: ``h + d * (1 - h)``, brighter where the tissue was dark, never above 1.

    This is the "screen" blend: a dense lesion brightens the dark aerated lung much more than an already bright rib or
    the mediastinum, as extra attenuation does on a windowed radiograph near saturation.

    Args:
        healthy: intensities in [0, 1].
        density: opacity of the added tissue, broadcastable, in [0, 1].

    Returns:
        Intensities in [0, 1].
    """
    return torch.addcmul(healthy, density, 1.0 - healthy)


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

    def half_extent(self, params: np.ndarray, side_size: np.ndarray) -> np.ndarray:
        """Half size ``(rows, cols)`` in mm of each lesion's support around its centre.

        Args:
            params: ``(N, K)`` uniform draws.
            side_size: ``(N, 2)`` height and width in mm of the lesion's lung side (zeros for lung placement).

        Returns:
            ``(N, 2)`` half extents in mm; ``alpha`` must be exactly 0 beyond them.
        """
        raise NotImplementedError

    def anchor(self, params: np.ndarray, side_box: np.ndarray) -> np.ndarray:
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
