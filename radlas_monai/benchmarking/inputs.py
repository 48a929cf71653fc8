"""Benchmark inputs: deterministic chest-like images in memory, and a small folder of radiograph files on disk.

Nothing here is real patient data; the images only need realistic sizes, value ranges and lung fields so that every
contender does its real work on them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields

__all__ = ["radiograph_batch", "write_radiograph_folder"]


def radiograph_batch(
    batch: int, size: int, device: str | torch.device = "cpu", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic chest-like images ``(B, 1, S, S)`` in [0, 1] (lungs, rib-like bands, texture) and lung masks.

    Args:
        batch: number of images ``B``.
        size: image side ``S``.
        device: where the tensors are put.
        seed: seed of the rib phase and the texture.

    Returns:
        ``(images, lung_masks)``, both float32 ``(B, 1, S, S)``; the masks are 0/1.
    """
    generator = torch.Generator().manual_seed(seed)
    lung = default_lung_fields(size, size, "cpu").float()
    rows = torch.linspace(0, 1, size).view(1, 1, size, 1)
    phase = torch.rand(batch, 1, 1, 1, generator=generator)
    ribs = 0.08 * torch.sin(2 * torch.pi * (9 * rows + phase)).clamp_min(0)
    texture = 0.04 * torch.rand(batch, 1, size, size, generator=generator)
    images = (0.8 - lung * (0.5 - ribs - texture)).clamp(0, 1)
    return images.to(device), lung.expand(batch, 1, size, size).contiguous().to(device)


def write_radiograph_folder(
    folder: str | os.PathLike, num_images: int, size: int, seed: int = 0
) -> list[dict[str, str]]:
    """Write ``num_images`` 8-bit PNG radiographs of :func:`radiograph_batch` and their lung masks into ``folder``.

    Args:
        folder: destination (``images/`` and ``lung_masks/`` are created in it).
        num_images: how many images.
        size: their side in pixels (the source size a loader reads and resizes).
        seed: seed of the images.

    Returns:
        Datalist items ``{"image": path, "lung_mask": path}`` with absolute paths.

    Raises:
        ValueError: when ``num_images`` or ``size`` is not positive.
    """
    from radlas_monai.data.writers import write_png

    if num_images < 1 or size < 1:
        raise ValueError(f"need num_images >= 1 and size >= 1, got num_images={num_images}, size={size}")
    root = Path(folder)
    images, lungs = radiograph_batch(num_images, size, "cpu", seed)
    lung = (lungs[0, 0].numpy() > 0).astype(np.uint8) * np.uint8(255)
    items = []
    for index in range(num_images):
        image_path = write_png(images[index, 0].numpy(), root / "images" / f"bench-{index:05d}.png")
        lung_path = write_png(lung, root / "lung_masks" / f"bench-{index:05d}.png")
        items.append({"image": str(image_path.resolve()), "lung_mask": str(lung_path.resolve())})
    return items
