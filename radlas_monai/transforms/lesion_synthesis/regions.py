"""Where lesions may go: lung fields (given or default), lesion-centre sampling, lung-side boxes, lung patches.

Without a lung mask, the lung fields default to two fixed ellipses relative to the image (see
:func:`default_lung_fields`), fitted to the average of 247 segmented PA chest radiographs (JSRT/SCR) and slightly
shrunk so that they stay inside the lungs of most PA films.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from radlas_monai.transforms.lesion_synthesis.patches import PatchIndex
from radlas_monai.transforms.lesion_synthesis.shapes import box_mean

__all__ = ["DEFAULT_LUNG_ELLIPSES", "default_lung_fields", "LungFields", "lung_patches"]

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


def lung_patches(index: PatchIndex, lung: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary lung patches and a soft, slightly dilated version of them (both 0 outside the image).

    The soft field is ``clamp(2 * m, 0, 1)`` with ``m`` the lung fraction of the ``(4r+1) x (4r+1)`` window around
    each pixel: 1 wherever at least half the window is lung (the whole lung field except sharp concave corners),
    falling linearly to exactly 0 at ``2r`` pixels outside the lung. The lung is gathered with a ``2r`` border, so the
    window also sees lung just outside the patch.

    Args:
        index: the patches.
        lung: ``(B or 1, 1, H, W)`` lung fields, nonzero = lung.
        radius: the dilation ``r`` in pixels (0: the soft field is the binary one).

    Returns:
        ``(core, soft)``, each ``(N, 1, Ph, Pw)`` float32 in [0, 1].
    """
    border = 2 * radius
    if border:
        steps = torch.arange(1, border + 1, device=index.rows.device)
        index = PatchIndex(
            batch=index.batch,
            rows=torch.cat((index.rows[:, :1] - steps.flip(0), index.rows, index.rows[:, -1:] + steps), dim=1),
            cols=torch.cat((index.cols[:, :1] - steps.flip(0), index.cols, index.cols[:, -1:] + steps), dim=1),
            height=index.height,
            width=index.width,
        )
    valid = index.valid
    core = (index.gather(lung) != 0).float() * valid
    if not border:
        return core, core
    soft = (2.0 * box_mean(core, border)).clamp_(0.0, 1.0) * valid
    crop = (slice(None), slice(None), slice(border, -border), slice(border, -border))
    return core[crop], soft[crop]


class LungFields:
    """Lung fields of a batch on a coarse grid: sample lesion centres inside them, find each lung side's box.

    The grid samples the mask at the centre pixel of every ``cell x cell`` block (a strided read, so building it
    costs a fraction of a pass over the mask). Centres are drawn uniformly among the lung cells, then uniformly within
    the cell; a jittered centre that falls outside the lung is moved back to its cell's centre pixel, so every
    drawn centre is a lung pixel.

    Args:
        lung: ``(B, 1, H, W)`` lung fields, nonzero = lung (``B`` may be 1 for fields shared by the whole batch).
        cell: side of a grid cell in pixels.

    Attributes:
        empty: ``(B,)`` bool, True for images without any lung cell (the caller substitutes default fields).
    """

    def __init__(self, lung: torch.Tensor, cell: int) -> None:
        self.cell = max(1, int(cell))
        self.lung = lung
        self.height, self.width = lung.shape[-2:]
        offset = self.cell // 2
        self.grid = lung[:, 0, offset :: self.cell, offset :: self.cell] != 0
        if self.grid.shape[-1] < 2:
            raise ValueError(f"image {tuple(lung.shape[-2:])} is too small for lung cells of {self.cell} px")
        cdf = self.grid.flatten(1).float().cumsum(dim=1)
        self.empty = cdf[:, -1] == 0
        self.cdf = cdf / cdf[:, -1:].clamp_min(1.0)
        self._boxes: torch.Tensor | None = None

    def sample(self, batch: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Lesion centres inside the lung fields.

        Args:
            batch: ``(N,)`` image index of every lesion.
            u: ``(N, 3)`` uniform draws (cell choice, row and column jitter).

        Returns:
            ``(N, 2)`` float centres ``(row, col)`` in pixels, each on a lung pixel (for a non-empty mask).
        """
        if self.cdf.shape[0] > 1:
            flat = torch.searchsorted(self.cdf[batch], u[:, :1].contiguous(), right=True)[:, 0]
        else:
            flat = torch.searchsorted(self.cdf[0], u[:, 0].contiguous(), right=True)
        flat = flat.clamp(max=self.cdf.shape[1] - 1)
        grid_w = self.grid.shape[-1]
        rows = torch.div(flat, grid_w, rounding_mode="floor")
        cols = flat - rows * grid_w
        corner = torch.stack((rows, cols), dim=1).float() * self.cell
        centre = corner + u[:, 1:3] * self.cell
        pixel = centre.long()
        pixel[:, 0].clamp_(max=self.height - 1)
        pixel[:, 1].clamp_(max=self.width - 1)
        image = batch if self.lung.shape[0] > 1 else torch.zeros_like(batch)
        inside = self.lung[image, 0, pixel[:, 0], pixel[:, 1]] != 0
        return torch.where(inside[:, None], centre, corner + (self.cell // 2 + 0.5))

    def side_boxes(self) -> torch.Tensor:
        """Bounding box of the lung in the image's left and right half (computed once).

        Returns:
            ``(B, 2, 4)`` boxes ``(row0, row1, col0, col1)`` in pixels (exclusive ends); side 0 is the image's left
            half (the patient's right lung on a PA film). A side without lung gets its default ellipse's box.
        """
        if self._boxes is None:
            self._boxes = self._side_boxes()
        return self._boxes

    def _side_boxes(self) -> torch.Tensor:
        present = self.grid
        grid_h, grid_w = present.shape[-2:]
        half = grid_w // 2
        boxes = []
        for side, cols in enumerate((slice(0, half), slice(half, grid_w))):
            part = present[..., cols]
            rows_any, cols_any = part.any(dim=2), part.any(dim=1)
            row0 = rows_any.float().argmax(dim=1)
            row1 = grid_h - rows_any.flip(1).float().argmax(dim=1)
            col0 = cols_any.float().argmax(dim=1) + cols.start
            col1 = cols.start + cols_any.shape[1] - cols_any.flip(1).float().argmax(dim=1)
            box = torch.stack((row0, row1, col0, col1), dim=1).float() * self.cell
            cy, cx, ay, ax = DEFAULT_LUNG_ELLIPSES[side]
            fallback = box.new_tensor(
                [(cy - ay) * self.height, (cy + ay) * self.height, (cx - ax) * self.width, (cx + ax) * self.width]
            )
            boxes.append(torch.where(rows_any.any(dim=1, keepdim=True), box, fallback))
        return torch.stack(boxes, dim=1)

