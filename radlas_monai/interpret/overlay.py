"""Lesion maps drawn over radiographs, for people: one colormap and one overlay used everywhere."""

from __future__ import annotations

import numpy as np

__all__ = ["hot_colormap", "overlay_heatmap"]


def hot_colormap(values: np.ndarray) -> np.ndarray:
    """The classic 'hot' colormap (black -> red -> yellow -> white).

    Args:
        values: array of any shape with values in [0, 1].

    Returns:
        float32 RGB array of shape ``values.shape + (3,)`` in [0, 1].
    """
    values = np.asarray(values, dtype=np.float32)
    rgb = np.stack([values * 3.0, values * 3.0 - 1.0, values * 3.0 - 2.0], axis=-1)
    return np.clip(rgb, 0.0, 1.0)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6, floor: float = 0.1) -> np.ndarray:
    """Blend a heat map over a grey radiograph: the radiograph stays readable where the map is low.

    The per-pixel opacity is ``alpha * clip((h - floor) / (1 - floor), 0, 1)``, so values below ``floor`` are not
    drawn at all.

    Args:
        image: (H, W) radiograph in [0, 1] (MONOCHROME2).
        heatmap: (H, W) map in [0, 1], same shape.
        alpha: opacity of the map where it is 1.
        floor: map values at or below this are transparent.

    Returns:
        uint8 RGB array (H, W, 3).

    Raises:
        ValueError: when the shapes differ or are not 2D, or ``alpha``/``floor`` are outside [0, 1).
    """
    image, heatmap = np.asarray(image, dtype=np.float32), np.asarray(heatmap, dtype=np.float32)
    if image.ndim != 2 or image.shape != heatmap.shape:
        raise ValueError(f"expected two (H, W) arrays of the same shape, got {image.shape} and {heatmap.shape}")
    if not (0.0 <= alpha <= 1.0 and 0.0 <= floor < 1.0):
        raise ValueError(f"alpha must be in [0, 1] and floor in [0, 1), got alpha={alpha}, floor={floor}")
    image = np.clip(np.nan_to_num(image), 0.0, 1.0)
    heatmap = np.clip(np.nan_to_num(heatmap), 0.0, 1.0)
    opacity = alpha * np.clip((heatmap - floor) / (1.0 - floor), 0.0, 1.0)[..., None]
    grey = np.repeat(image[..., None], 3, axis=-1)
    blended = (1.0 - opacity) * grey + opacity * hot_colormap(heatmap)
    return np.round(blended * 255.0).astype(np.uint8)
