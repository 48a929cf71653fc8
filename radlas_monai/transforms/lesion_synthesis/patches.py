"""Cut patches around lesions out of a batch, and compose rendered lesions back into it.

Rendering every lesion on the full image grid costs ``N * H * W``; rendering it on a patch that just covers its
support costs ``N * Ph * Pw``, typically 20-100x less. :class:`PatchIndex` locates the patches (one size per group of
similar lesions) and gathers pixels through flat indices; :class:`LesionCanvas` keeps the pixels with a positive
opacity and scatters them back with ``scatter_reduce``/``index_add``, composing
``healthy + alpha * (lesioned - healthy)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PatchIndex", "LesionCanvas", "ALPHA_LEVELS"]

#: Resolution of the opacity used to pick the family drawn with the largest opacity at a pixel.
ALPHA_LEVELS = 2**20
_FAMILY_BITS = 3


@dataclass
class PatchIndex:
    """Pixel positions of ``N`` equally sized patches in a ``(B, C, H, W)`` batch.

    Attributes:
        batch: ``(N,)`` image index of every patch.
        rows: ``(N, Ph)`` image row of every patch row (may fall outside ``[0, H)``).
        cols: ``(N, Pw)`` image column of every patch column (may fall outside ``[0, W)``).
        height: image rows ``H``.
        width: image columns ``W``.
    """

    batch: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    height: int
    width: int

    @classmethod
    def around(
        cls, batch: torch.Tensor, centre: torch.Tensor, size: tuple[int, int], image_size: tuple[int, int]
    ) -> PatchIndex:
        """Patches of ``size`` pixels centred (to the nearest pixel) on ``centre``.

        Args:
            batch: ``(N,)`` image index of every patch.
            centre: ``(N, 2)`` float centres ``(row, col)`` in pixels.
            size: ``(Ph, Pw)``, odd sizes centre exactly.
            image_size: ``(H, W)``.

        Returns:
            The index.
        """
        ph, pw = size
        top = torch.floor(centre[:, 0]).long() - ph // 2
        left = torch.floor(centre[:, 1]).long() - pw // 2
        rows = top[:, None] + torch.arange(ph, device=centre.device)
        cols = left[:, None] + torch.arange(pw, device=centre.device)
        return cls(batch=batch, rows=rows, cols=cols, height=image_size[0], width=image_size[1])

    @property
    def valid(self) -> torch.Tensor:
        """``(N, 1, Ph, Pw)`` float: 1 where the patch pixel lies inside the image."""
        row_ok = (self.rows >= 0) & (self.rows < self.height)
        col_ok = (self.cols >= 0) & (self.cols < self.width)
        return (row_ok[:, None, :, None] & col_ok[:, None, None, :]).float()

    def pixels(self) -> torch.Tensor:
        """``(N, Ph, Pw)`` flat pixel index ``row * W + col`` inside one image (clamped to the image)."""
        rows = self.rows.clamp(0, self.height - 1)
        cols = self.cols.clamp(0, self.width - 1)
        return rows[:, :, None] * self.width + cols[:, None, :]

    def gather(self, images: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Cut the patches out of ``images`` (edge pixels repeated outside the image).

        Args:
            images: ``(B, C, H, W)``; with ``B == 1`` the same image serves every patch.
            batch: image index per patch to use instead of :attr:`batch` (e.g. a donor image).

        Returns:
            ``(N, C, Ph, Pw)`` patches of the same dtype as ``images``.
        """
        batch = self.batch if batch is None else batch
        if images.shape[0] == 1:
            batch = torch.zeros_like(batch)
        channels = images.shape[1]
        plane = self.height * self.width
        base = (batch * channels)[:, None] + torch.arange(channels, device=batch.device)[None, :]
        index = base[:, :, None, None] * plane + self.pixels()[:, None]
        return torch.take(images.contiguous(), index)


class LesionCanvas:
    """Collects rendered lesions of a batch and composes the corrupted images, touching only lesioned pixels.

    Each lesion contributes ``alpha * (target - healthy)`` to its pixels; where lesions overlap, their contributions
    add up (as overlapping densities do on a radiograph) and the sum is clipped to [0, 1]. The soft lesion mask is the
    largest opacity at each pixel, and the family map names the family that drew it. Pixels without a positive
    opacity keep their healthy value bit for bit; dense work is limited to allocating the outputs.

    Args:
        shape: the batch shape ``(B, C, H, W)``.
        device: where to compose.
    """

    def __init__(self, shape: tuple[int, int, int, int], device: torch.device | str) -> None:
        self.shape = shape
        self.device = device
        self._pixels: list[torch.Tensor] = []
        self._alpha: list[torch.Tensor] = []
        self._delta: list[torch.Tensor] = []
        self._key: list[torch.Tensor] = []

    def add(
        self, index: PatchIndex, alpha: torch.Tensor, target: torch.Tensor, healthy: torch.Tensor, family: int
    ) -> None:
        """Keep one group of lesions (only their pixels with a positive opacity).

        Args:
            index: where the patches lie.
            alpha: ``(N, 1, Ph, Pw)`` opacities in [0, 1], 0 where the patch leaves the image.
            target: ``(N, C, Ph, Pw)`` lesioned intensities.
            healthy: ``(N, C, Ph, Pw)`` healthy intensities of the patches.
            family: the family's index (1..7).
        """
        plane = self.shape[2] * self.shape[3]
        channels = target.shape[1]
        alpha = alpha.clamp(max=1.0)
        kept = torch.nonzero(alpha.flatten() > 0)[:, 0]
        flat = index.batch[:, None, None] * plane + index.pixels()
        delta = (alpha * (target - healthy)).permute(0, 2, 3, 1).reshape(-1, channels)
        alpha = alpha.flatten()[kept]
        self._pixels.append(flat.flatten()[kept])
        self._alpha.append(alpha)
        self._delta.append(delta[kept])
        self._key.append((torch.ceil(alpha * ALPHA_LEVELS).long() << _FAMILY_BITS) | family)

    def compose(self, healthy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The corrupted batch, the soft lesion mask and the family map.

        Args:
            healthy: ``(B, C, H, W)`` float32 healthy batch (contiguous).

        Returns:
            ``(image, mask, family)``: ``image`` ``(B, C, H, W)`` float32, in [0, 1] where lesioned and identical to
            ``healthy`` elsewhere; ``mask`` ``(B, 1, H, W)`` float32; ``family`` ``(B, 1, H, W)`` int64.
        """
        b, c, h, w = self.shape
        image = healthy.clone()
        mask = torch.zeros((b, 1, h, w), dtype=torch.float32, device=self.device)
        family = torch.zeros((b, 1, h, w), dtype=torch.int64, device=self.device)
        if sum(int(p.numel()) for p in self._pixels) == 0:
            return image, mask, family
        pixels, alpha = torch.cat(self._pixels), torch.cat(self._alpha)
        delta, key = torch.cat(self._delta), torch.cat(self._key)
        mask.view(-1).scatter_reduce_(0, pixels, alpha, reduce="amax")
        family_flat = family.view(-1)
        family_flat.scatter_reduce_(0, pixels, key, reduce="amax")
        family_flat[pixels] = family_flat[pixels] & ((1 << _FAMILY_BITS) - 1)
        plane = h * w
        if c > 1:  # pixel b*HW + p of the mask is pixel (b*C + k)*HW + p of channel k
            batch = torch.div(pixels, plane, rounding_mode="floor")
            pixels = (pixels + batch * (c - 1) * plane)[:, None] + torch.arange(c, device=pixels.device) * plane
        pixels = pixels.flatten()
        image_flat = image.view(-1)
        image_flat.index_add_(0, pixels, delta.flatten())
        image_flat[pixels] = image_flat[pixels].clamp(0.0, 1.0)
        return image, mask, family
