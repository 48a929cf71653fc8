"""Measures of how realistic synthetic lesions are, against real nodules and against the design's rules.

* :func:`disc_ring_contrast`: the simplest measure a reader uses, a nodule's brightness against its surroundings
  (mean of the central disc, half the radius, minus the mean of a ring at 1.2-1.8 radii).
* :func:`family_pixel_shares`: the share of the lesion mask's mass each family contributes (the mix the grounding
  loss actually sees; by lesion count, large border-hugging lesions would dominate it unseen).
* :func:`lesion_centres`: centre and equivalent radius of every connected synthetic lesion, and its distance to the
  lung border, to compare placement with real nodules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["disc_ring_contrast", "family_pixel_shares", "lesion_centres"]


def disc_ring_contrast(image: np.ndarray, row: float, col: float, radius: float) -> float:
    """Mean of the disc of half ``radius`` at ``(row, col)`` minus the mean of the ring at 1.2-1.8 ``radius``.

    Args:
        image: ``(H, W)`` intensities.
        row, col: centre in pixels.
        radius: lesion radius in pixels (``> 0``).

    Returns:
        The contrast (positive = brighter than the surroundings); NaN when the disc or ring leaves the image.
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    distance = np.hypot(yy - row, xx - col)
    disc, ring = distance <= 0.5 * radius, (distance > 1.2 * radius) & (distance <= 1.8 * radius)
    if not disc.any() or not ring.any():
        return float("nan")
    return float(image[disc].mean() - image[ring].mean())


def family_pixel_shares(mask: np.ndarray, family: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Share of the soft mask's total mass carried by each family.

    Args:
        mask: soft lesion masks, any shape.
        family: the family map of the same shape (0 = none, ``k`` = ``names[k - 1]``).
        names: family names in index order.

    Returns:
        ``{name: share}`` summing to 1 (all 0 for an empty mask).
    """
    total = float(mask.sum())
    return {name: float(mask[family == k + 1].sum()) / total if total > 0 else 0.0 for k, name in enumerate(names)}


def lesion_centres(
    mask: np.ndarray, family: np.ndarray, lung: np.ndarray, threshold: float = 0.5
) -> list[tuple[int, float, float, float, float]]:
    """Every connected lesion core of one image: ``(family, row, col, equivalent radius, depth)`` in pixels.

    ``depth`` is the centre's distance to the nearest non-lung pixel (0 outside the lung).

    Args:
        mask: ``(H, W)`` soft lesion mask; cores are ``mask > threshold``.
        family: ``(H, W)`` family map.
        lung: ``(H, W)`` lung mask (nonzero = lung).
        threshold: core threshold.
    """
    depth = ndimage.distance_transform_edt(np.pad(lung != 0, 1))[1:-1, 1:-1]
    labels, count = ndimage.label(mask > threshold)
    out = []
    for index, region in enumerate(ndimage.find_objects(labels), 1):
        pixels = labels[region] == index
        rows, cols = np.nonzero(pixels)
        row, col = rows.mean() + region[0].start, cols.mean() + region[1].start
        kind = int(np.bincount(family[region][pixels]).argmax())
        radius = float(np.sqrt(pixels.sum() / np.pi))
        out.append((kind, float(row), float(col), radius, float(depth[int(row), int(col)])))
    return out
