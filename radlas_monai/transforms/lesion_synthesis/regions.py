"""Where lesions may go: lung fields (given or default), lesion-centre sampling, lung-side boxes, lung patches.

Without a lung mask, the lung fields default to two fixed ellipses relative to the image (see
:func:`default_lung_fields`), fitted to the average of 247 segmented PA chest radiographs (JSRT/SCR) and slightly
shrunk so that they stay inside the lungs of most PA films.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from radlas_monai.transforms.lesion_synthesis.patches import PatchIndex
from radlas_monai.transforms.lesion_synthesis.shapes import box_mean

__all__ = [
    "DEFAULT_LUNG_ELLIPSES",
    "default_lung_fields",
    "soft_lung",
    "lung_patches",
    "LungFields",
    "LungContext",
    "LungRegions",
]

logger = logging.getLogger(__name__)

#: ``(centre_row, centre_col, semi_rows, semi_cols)`` of the image-left and image-right lung, as image fractions.
DEFAULT_LUNG_ELLIPSES: tuple[tuple[float, float, float, float], ...] = (
    (0.45, 0.28, 0.32, 0.14),
    (0.45, 0.72, 0.32, 0.14),
)


def default_lung_fields(height: int, width: int, device: torch.device | str) -> torch.Tensor:
    """Two elliptical lung fields at fixed relative positions (PA chest radiograph, patient upright).

    Args:
        height: image rows ``H``.
        width: image columns ``W``.
        device: where to build the mask.

    Returns:
        ``(1, 1, H, W)`` bool mask, True inside either ellipse.
    """
    rows = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    cols = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    mask = torch.zeros((height, width), dtype=torch.bool, device=device)
    for cy, cx, ay, ax in DEFAULT_LUNG_ELLIPSES:
        mask |= ((rows[:, None] - cy) / ay) ** 2 + ((cols[None, :] - cx) / ax) ** 2 <= 1.0
    return mask[None, None]


def soft_lung(lung: torch.Tensor, radius: int) -> torch.Tensor:
    """The soft, slightly dilated lung field of :func:`lung_patches` on whole images (to cache fixed fields).

    Args:
        lung: ``(B, 1, H, W)`` lung fields, nonzero = lung.
        radius: the dilation ``r`` in pixels.

    Returns:
        ``(B, 1, H, W)`` float32 in [0, 1].
    """
    core = (lung != 0).float()
    return torch.maximum(core, (2.0 * box_mean(core, 2 * radius)).clamp_(max=1.0)) if radius > 0 else core


def lung_patches(
    index: PatchIndex, lung: torch.Tensor, radius: int, soft: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary lung patches and a soft, slightly dilated version of them.

    The soft field is 1 on the lung and ``clamp(2 * m, 0, 1)`` elsewhere, with ``m`` the lung fraction of the
    ``(4r+1) x (4r+1)`` window around the pixel: about 1 just outside a straight lung border, falling linearly to
    exactly 0 at ``2r`` pixels from the lung. It is computed on windows ``2r`` pixels wider than the patches, so it
    also sees lung just outside them.

    Args:
        index: the patches.
        lung: ``(B or 1, 1, H, W)`` lung fields, nonzero = lung.
        radius: the dilation ``r`` in pixels (0: the soft field is the binary one).
        soft: the precomputed :func:`soft_lung` of ``lung`` for this radius, if any.

    Returns:
        ``(core, soft)``, each ``(N, 1, Ph, Pw)`` float32 in [0, 1].
    """
    core = (index.gather(lung) != 0).float()
    if soft is not None:
        return core, index.gather(soft)
    if radius <= 0:
        return core, core
    border = 2 * radius
    (ph, pw), (height, width) = index.size, index.image_size
    wide_h, wide_w = min(ph + 2 * border, height), min(pw + 2 * border, width)
    wide = PatchIndex(
        batch=index.batch,
        top=np.clip(index.top - border, 0, height - wide_h),
        left=np.clip(index.left - border, 0, width - wide_w),
        size=(wide_h, wide_w),
        image_size=index.image_size,
        device=index.device,
    )
    wide_core = (wide.gather(lung) != 0).float()
    soft = torch.maximum(wide_core, (2.0 * box_mean(wide_core, border)).clamp_(max=1.0))
    offset = torch.from_numpy(np.stack((np.arange(len(index.batch)), index.top - wide.top, index.left - wide.left)))
    offset = offset.to(soft.device)
    soft = soft.unfold(2, ph, 1).unfold(3, pw, 1)[offset[0], :, offset[1], offset[2]]
    return core, soft


class LungFields:
    """Lung fields of a batch on a coarse grid: sample lesion centres inside them, find each lung side's box.

    The grid samples the mask at the centre pixel of every ``cell x cell`` block (a strided read, a fraction of a pass
    over the mask) and lives on the CPU as numpy, like all per-lesion geometry. Centres are drawn uniformly among the
    lung cells, then uniformly within the cell; a jittered centre that falls outside the lung is moved back to its
    cell's centre pixel, so every drawn centre is a lung pixel. Given a ``min_depth`` per lesion, only cells at least
    that far inside the lung (:attr:`depth`, the distance to the nearest non-lung cell) are drawn, so a lesion is
    never cut into a half-disc by the lung's edge; where no cell is that deep, the deepest cells are drawn.

    Args:
        lung: ``(B, 1, H, W)`` lung fields, nonzero = lung (``B`` may be 1 for fields shared by the whole batch).
        cell: side of a grid cell in pixels.

    Attributes:
        grid: ``(B, h, w)`` numpy bool, lung at the cell centres.
        empty: ``(B,)`` numpy bool, True for images without any lung cell (the caller substitutes default fields).
        depth: ``(B, h, w)`` numpy float, distance in pixels from each cell centre to the nearest non-lung cell
            centre (0 outside the lung; the image edge counts as non-lung).
    """

    def __init__(self, lung: torch.Tensor, cell: int) -> None:
        self.cell = max(1, int(cell))
        self.lung = lung
        self.height, self.width = lung.shape[-2:]
        offset = self.cell // 2
        self.grid = (lung[:, 0, offset :: self.cell, offset :: self.cell] != 0).cpu().numpy()
        if self.grid.shape[-1] < 2:
            raise ValueError(f"image {tuple(lung.shape[-2:])} is too small for lung cells of {self.cell} px")
        cdf = self.grid.reshape(self.grid.shape[0], -1).cumsum(axis=1, dtype=np.float64)
        self.empty = cdf[:, -1] == 0
        self.cdf = cdf / np.maximum(cdf[:, -1:], 1.0)
        padded = np.pad(self.grid, ((0, 0), (1, 1), (1, 1)))
        self.depth = np.stack([ndimage.distance_transform_edt(g)[1:-1, 1:-1] for g in padded]) * self.cell
        self._boxes: np.ndarray | None = None

    def sample(self, batch: np.ndarray, u: np.ndarray, min_depth: np.ndarray | None = None) -> np.ndarray:
        """Lesion centres inside the lung fields.

        Args:
            batch: ``(N,)`` image index of every lesion.
            u: ``(N, 3)`` uniform draws (cell choice, row and column jitter).
            min_depth: ``(N,)`` least distance in pixels of each centre from the lung's edge (None: any lung cell).

        Returns:
            ``(N, 2)`` float64 centres ``(row, col)`` in pixels, each on a lung pixel (for a non-empty mask).
        """
        image = np.asarray(batch) if self.cdf.shape[0] > 1 else np.zeros(len(batch), dtype=np.int64)
        cdf = self.cdf[image] if min_depth is None else self._deep_cdf(image, np.asarray(min_depth, dtype=np.float64))
        flat = np.minimum((cdf <= u[:, :1]).sum(axis=1), cdf.shape[1] - 1)
        rows, cols = np.divmod(flat, self.grid.shape[-1])
        corner = np.stack((rows, cols), axis=1).astype(np.float64) * self.cell
        centre = corner + u[:, 1:3] * self.cell
        pixel = np.minimum(centre.astype(np.int64), (self.height - 1, self.width - 1))
        index = torch.from_numpy(np.stack((image, pixel[:, 0], pixel[:, 1]))).to(self.lung.device)
        inside = (self.lung[index[0], 0, index[1], index[2]] != 0).cpu().numpy()
        return np.where(inside[:, None], centre, corner + (self.cell // 2 + 0.5))

    def _deep_cdf(self, image: np.ndarray, min_depth: np.ndarray) -> np.ndarray:
        """Per-lesion CDF over the cells at least ``min_depth`` deep (the deepest cells where none is)."""
        depth = self.depth[image].reshape(len(image), -1)
        need = np.minimum(min_depth[:, None], depth.max(axis=1, keepdims=True))
        allowed = (depth >= need) & (depth > 0)
        cdf = allowed.cumsum(axis=1, dtype=np.float64)
        return np.where(cdf[:, -1:] > 0, cdf / np.maximum(cdf[:, -1:], 1.0), self.cdf[image])

    def side_boxes(self) -> np.ndarray:
        """Bounding box of the lung in the image's left and right half (computed once).

        Returns:
            ``(B, 2, 4)`` boxes ``(row0, row1, col0, col1)`` in pixels (exclusive ends, at the grid's resolution);
            side 0 is the image's left half (the patient's right lung on a PA film). A side without lung gets its
            default ellipse's box.
        """
        if self._boxes is None:
            self._boxes = self._side_boxes()
        return self._boxes

    def _side_boxes(self) -> np.ndarray:
        grid_h, grid_w = self.grid.shape[-2:]
        half = grid_w // 2
        boxes = []
        for side, cols in enumerate((slice(0, half), slice(half, grid_w))):
            part = self.grid[..., cols]
            rows_any, cols_any = part.any(axis=2), part.any(axis=1)
            row0 = rows_any.argmax(axis=1)
            row1 = grid_h - rows_any[:, ::-1].argmax(axis=1)
            col0 = cols_any.argmax(axis=1) + cols.start
            col1 = cols.start + cols_any.shape[1] - cols_any[:, ::-1].argmax(axis=1)
            box = np.stack((row0, row1, col0, col1), axis=1).astype(np.float64) * self.cell
            cy, cx, ay, ax = DEFAULT_LUNG_ELLIPSES[side]
            fallback = np.array(
                [(cy - ay) * self.height, (cy + ay) * self.height, (cx - ax) * self.width, (cx + ax) * self.width]
            )
            boxes.append(np.where(rows_any.any(axis=1, keepdims=True), box, fallback))
        return np.stack(boxes, axis=1)


@dataclass
class LungContext:
    """The lung fields of one call.

    Attributes:
        lung: ``(B or 1, 1, H, W)`` lung fields, nonzero = lung.
        fields: their coarse grid (centre sampling, side boxes).
        soft: the precomputed soft lung (:func:`soft_lung`) for the call's dilation, for cached default fields.
    """

    lung: torch.Tensor
    fields: LungFields
    soft: torch.Tensor | None = None


class LungRegions:
    """Resolves the lung fields of a call: the given masks, or the default ellipses (built once per size and device).

    Args:
        grid_cells: lung cells along the image's short side (centre sampling resolution).
    """

    def __init__(self, grid_cells: int = 64) -> None:
        self.grid_cells = grid_cells
        self._default: dict[tuple[int, int, str], tuple[torch.Tensor, LungFields]] = {}
        self._soft: dict[tuple[int, int, str, int], torch.Tensor] = {}

    def resolve(self, lung_mask: Any, x: torch.Tensor, radius: int) -> LungContext:
        """Lung fields for the batch ``x``.

        Args:
            lung_mask: None, or nonzero = lung, ``(H, W)``, ``(1 | C, H, W)`` or ``(B, 1 | C, H, W)``; images whose
                mask has no lung cell fall back to the default ellipses (with a warning).
            x: ``(B, C, H, W)`` batch.
            radius: lung dilation in pixels.

        Returns:
            The context.

        Raises:
            ValueError: when the mask's shape does not match the batch.
        """
        batch, _, height, width = x.shape
        key = (height, width, str(x.device))
        cell = max(1, min(height, width) // self.grid_cells)
        if key not in self._default:
            lung = default_lung_fields(height, width, x.device)
            self._default[key] = (lung, LungFields(lung, cell))
        default, default_fields = self._default[key]
        if lung_mask is None:
            if (*key, radius) not in self._soft:
                self._soft[(*key, radius)] = soft_lung(default, radius)
            return LungContext(default, default_fields, self._soft[(*key, radius)])
        lung = torch.as_tensor(lung_mask).as_subclass(torch.Tensor).to(x.device)
        lung = lung.reshape(1, 1, *lung.shape) if lung.ndim == 2 else lung
        lung = lung.unsqueeze(0) if lung.ndim == 3 else lung
        if lung.ndim != 4 or tuple(lung.shape[-2:]) != (height, width) or lung.shape[0] not in (1, batch):
            raise ValueError(
                f"lung_mask must match the image's spatial shape {(height, width)} and batch of {batch}, "
                f"got shape {tuple(lung.shape)}"
            )
        if lung.shape[1] > 1:
            lung = (lung != 0).any(dim=1, keepdim=True)
        fields = LungFields(lung, cell)
        if fields.empty.any():
            logger.warning("%d lung mask(s) are empty or too small; using the default ellipses", fields.empty.sum())
            empty = torch.from_numpy(fields.empty).to(x.device).view(-1, 1, 1, 1)
            lung = torch.where(empty, default, lung != 0)
            fields = LungFields(lung, cell)
        return LungContext(lung, fields)
