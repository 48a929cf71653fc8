"""Training-free localization baselines: a multi-scale Laplacian-of-Gaussian blob filter and a random lung point.

A learned lesion map that loses to either has learned nothing about lesions.

* :class:`LoGBlobMap`: bright-blob response ``max_s  -s^2 (LoG_s * image)`` over scales ``s`` matched to nodule
  radii (Lindeberg, "Feature detection with automatic scale selection", IJCV 1998: a blob of radius ``r`` peaks at
  ``s = r / sqrt(2)``), mapped to ``[0, 1)`` by a fixed ``tanh(response / scale)`` (never per image, so the map's
  maximum still ranks images).
* :class:`RandomLungPointMap`: chance: one uniformly drawn pixel of the default lung-field ellipses (no lung mask
  needed), lit with a small Gaussian spot; the pointing game of this map is the chance level.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields

__all__ = ["LoGBlobMap", "RandomLungPointMap"]


class LoGBlobMap:
    """``image (B, 1, H, W) -> bright-blob map (B, 1, H, W)`` in ``[0, 1)``.

    Args:
        radii_px: blob radii (pixels at the evaluated size) the scales are matched to.
        scale: response mapped to ``tanh(1) = 0.76``.
    """

    def __init__(self, radii_px: tuple[float, ...] = (2.5, 4.0, 6.0, 9.0), scale: float = 0.05) -> None:
        if not radii_px or min(radii_px) <= 0 or scale <= 0:
            raise ValueError(f"need positive radii and scale, got radii_px={radii_px}, scale={scale}")
        self.sigmas = tuple(float(r) / np.sqrt(2.0) for r in radii_px)
        self.scale = float(scale)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """The blob map (computed on the CPU with scipy; returned on ``image``'s device)."""
        if image.ndim != 4 or image.shape[1] != 1:
            raise ValueError(f"expected (B, 1, H, W), got {tuple(image.shape)}")
        array = image.detach().double().cpu().numpy()
        out = np.empty(array.shape, dtype=np.float32)
        for b in range(array.shape[0]):
            centred = array[b, 0] - array[b, 0].mean()  # LoG ignores a constant; the truncated kernel does not quite
            responses = [-(s**2) * ndimage.gaussian_laplace(centred, s) for s in self.sigmas]
            out[b, 0] = np.tanh(np.clip(np.max(responses, axis=0), 0.0, None) / self.scale)
        return torch.from_numpy(out).to(image.device)


class RandomLungPointMap:
    """Chance baseline: a Gaussian spot at one random pixel of the default lung fields per image.

    Args:
        seed: seed of the draws (a private generator; the same seed gives the same points for the same call order).
        sigma: spot width in pixels.
    """

    def __init__(self, seed: int = 0, sigma: float = 2.0) -> None:
        self.random_state = np.random.RandomState(seed)
        self.sigma = float(sigma)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """One spot per image, inside the default lung-field ellipses."""
        if image.ndim != 4:
            raise ValueError(f"expected (B, C, H, W), got {tuple(image.shape)}")
        batch, _, height, width = image.shape
        lungs = np.argwhere(default_lung_fields(height, width, "cpu")[0, 0].numpy() != 0)
        out = np.zeros((batch, 1, height, width), dtype=np.float32)
        for b in range(batch):
            row, col = lungs[self.random_state.randint(len(lungs))]
            out[b, 0, row, col] = 1.0
            out[b, 0] = ndimage.gaussian_filter(out[b, 0], self.sigma)
            out[b, 0] /= out[b, 0].max()
        return torch.from_numpy(out).to(image.device)
