"""Cut patches around lesions out of a batch, and compose rendered lesions back into it.

Rendering every lesion on the full image grid costs ``N * H * W``; rendering it on a patch that just covers its
support costs ``N * Ph * Pw``, typically 20-100x less. :class:`PatchIndex` places equally sized windows (one size per
group of similar lesions) and copies them out through a strided ``unfold`` view; :class:`LesionCanvas` keeps the
pixels with a positive opacity and scatters them back with ``scatter_reduce``/``index_add``, composing
``healthy + alpha * (lesioned - healthy)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PatchIndex", "LesionCanvas"]


@dataclass
class PatchIndex:
    """``N`` equally sized windows lying inside the images of a ``(B, C, H, W)`` batch.

    A window is centred on its lesion where possible and shifted inwards at the image border; since the image ends
    there, the shifted window still covers every in-image pixel of the lesion's support. Positions are numpy arrays
    (geometry is computed on the CPU); gathering runs on ``device``.

    Attributes:
        batch: ``(N,)`` int64 image index of every window.
        top: ``(N,)`` int64 first row of every window.
        left: ``(N,)`` int64 first column of every window.
        size: ``(Ph, Pw)``, at most ``(H, W)``.
        image_size: ``(H, W)``.
        device: where the images live.
    """

    batch: np.ndarray
    top: np.ndarray
    left: np.ndarray
    size: tuple[int, int]
    image_size: tuple[int, int]
    device: torch.device

    @classmethod
    def around(
        cls,
        batch: np.ndarray,
        centre: np.ndarray,
        size: tuple[int, int],
        image_size: tuple[int, int],
        device: torch.device | str,
    ) -> PatchIndex:
        """Windows of ``size`` pixels centred on ``centre`` (to the pixel), shifted inside the image.

        Args:
            batch: ``(N,)`` image index of every window.
            centre: ``(N, 2)`` float centres ``(row, col)`` in pixels.
            size: ``(Ph, Pw)``; clipped to the image size.
            image_size: ``(H, W)``.
            device: where the images live.

        Returns:
            The index.
        """
        height, width = image_size
        ph, pw = min(int(size[0]), height), min(int(size[1]), width)
        top = np.clip(np.floor(centre[:, 0]).astype(np.int64) - ph // 2, 0, height - ph)
        left = np.clip(np.floor(centre[:, 1]).astype(np.int64) - pw // 2, 0, width - pw)
        return cls(np.asarray(batch, dtype=np.int64), top, left, (ph, pw), (height, width), torch.device(device))

    @property
    def rows(self) -> np.ndarray:
        """``(N, Ph)`` image row of every window row."""
        return self.top[:, None] + np.arange(self.size[0])

    @property
    def cols(self) -> np.ndarray:
        """``(N, Pw)`` image column of every window column."""
        return self.left[:, None] + np.arange(self.size[1])

    def gather(self, images: torch.Tensor, batch: np.ndarray | None = None) -> torch.Tensor:
        """Copy the windows out of ``images``.

        Args:
            images: ``(B, C, H, W)``; with ``B == 1`` the same image serves every window.
            batch: image index per window to use instead of :attr:`batch` (e.g. a donor image).

        Returns:
            ``(N, C, Ph, Pw)`` patches of the same dtype as ``images``.
        """
        batch = self.batch if batch is None else batch
        if images.shape[0] == 1:
            batch = np.zeros_like(batch)
        index = torch.from_numpy(np.stack((batch, self.top, self.left))).to(images.device)
        windows = images.unfold(2, self.size[0], 1).unfold(3, self.size[1], 1)
        return windows[index[0], :, index[1], index[2]]

    def pixels(self) -> torch.Tensor:
        """``(N, Ph, Pw)`` int64 flat batch pixel index ``b * H * W + row * W + col`` of every window pixel."""
        (ph, pw), (height, width) = self.size, self.image_size
        start = (self.batch * height + self.top) * width + self.left
        within = np.arange(ph)[:, None] * width + np.arange(pw)
        return torch.from_numpy(start).to(self.device)[:, None, None] + torch.from_numpy(within).to(self.device)


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
        self._family: list[torch.Tensor] = []

    def add(
        self, index: PatchIndex, alpha: torch.Tensor, target: torch.Tensor, healthy: torch.Tensor, family: int
    ) -> None:
        """Keep one group of lesions (only their pixels with a positive opacity).

        Args:
            index: where the windows lie.
            alpha: ``(N, 1, Ph, Pw)`` opacities in [0, 1].
            target: ``(N, C, Ph, Pw)`` lesioned intensities.
            healthy: ``(N, C, Ph, Pw)`` healthy intensities of the windows.
            family: the family's index (>= 1).
        """
        channels = target.shape[1]
        alpha = alpha.reshape(-1)
        kept = torch.nonzero(alpha > 0)[:, 0]
        opacity = alpha[kept]
        if channels == 1:
            delta = (target.reshape(-1)[kept] - healthy.reshape(-1)[kept])[:, None]
        else:
            target = target.permute(0, 2, 3, 1).reshape(-1, channels)
            delta = target[kept] - healthy.permute(0, 2, 3, 1).reshape(-1, channels)[kept]
        self._pixels.append(index.pixels().reshape(-1)[kept])
        self._alpha.append(opacity)
        self._delta.append(opacity[:, None] * delta)
        self._family.append(torch.full(kept.shape, family, dtype=torch.uint8, device=kept.device))

    def compose(self, healthy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The corrupted batch, the soft lesion mask and the family map.

        Args:
            healthy: ``(B, C, H, W)`` float32 healthy batch (contiguous).

        Returns:
            ``(image, mask, family)``: ``image`` ``(B, C, H, W)`` float32, in [0, 1] where lesioned and identical to
            ``healthy`` elsewhere; ``mask`` ``(B, 1, H, W)`` float32; ``family`` ``(B, 1, H, W)`` uint8.
        """
        b, c, h, w = self.shape
        image = healthy.clone()
        mask = torch.zeros((b, 1, h, w), dtype=torch.float32, device=self.device)
        family = torch.zeros((b, 1, h, w), dtype=torch.uint8, device=self.device)
        if sum(int(p.numel()) for p in self._pixels) == 0:
            return image, mask, family
        pixels, alpha = torch.cat(self._pixels), torch.cat(self._alpha)
        delta, families = torch.cat(self._delta), torch.cat(self._family)
        mask_flat = mask.view(-1).scatter_reduce_(0, pixels, alpha, reduce="amax")
        winner = torch.nonzero(alpha == mask_flat[pixels])[:, 0]  # ties: any of the tied families
        family.view(-1)[pixels[winner]] = families[winner]
        plane = h * w
        if c > 1:  # pixel b*HW + p of the mask is pixel (b*C + k)*HW + p of channel k
            batch = torch.div(pixels, plane, rounding_mode="floor")
            pixels = (pixels + batch * (c - 1) * plane)[:, None] + torch.arange(c, device=pixels.device) * plane
        pixels = pixels.flatten()
        image_flat = image.view(-1)
        image_flat.index_add_(0, pixels, delta.flatten())
        image_flat[pixels] = image_flat[pixels].clamp(0.0, 1.0)
        return image, mask, family
