"""Labelled findings of the synthetic radiographs: the :class:`Finding` record and shared helpers.

The findings are rendered *physically* into the chest's path-length layers (see
:mod:`.parenchyma` for nodules, masses and consolidation, :mod:`.pleura` for effusion and
pneumothorax, and :func:`cardiomegaly` here), by a generator that is deliberately independent of
the pretraining lesion synthesizer (``radlas_monai.transforms``), so that evaluating a model on
these findings is not circular.

Every finding carries its own mask and a box that is exactly the mask's bounding box, in the
project's conventions: ``box = [x0, y0, x1, y1]`` with x = column, y = row and exclusive upper
bounds; ``center = [x, y]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from radlas_monai.data.synthetic.anatomy import ChestLayers

__all__ = [
    "BODY_THICKNESS_MM",
    "Finding",
    "mask_box",
    "finding_from_mask",
    "sample_lung_point",
    "cardiomegaly",
    "cardiothoracic_ratio",
]

#: the anteroposterior thickness of the mid chest that one path-length unit stands for
BODY_THICKNESS_MM = 220.0


@dataclass
class Finding:
    """One labelled finding of a synthetic radiograph.

    Attributes:
        name: the finding, spelled as in :data:`radlas_monai.data.vocabulary.SYNTHETIC_FINDINGS`.
        mask: uint8 H x W, 1 inside the finding, 0 elsewhere.
        box: ``[x0, y0, x1, y1]``, the mask's bounding box (x = column, y = row, x1 / y1 exclusive).
        center: ``[x, y]`` in pixels: the sphere centre of a nodule or mass, otherwise the mask
            pixel farthest from the mask's border (always inside the mask).
        radius: the radius in pixels of a nodule or mass; ``None`` for findings that are not round.
    """

    name: str
    mask: np.ndarray
    box: list[int]
    center: list[float]
    radius: float | None = None

    @property
    def equivalent_radius(self) -> float:
        """``radius`` if the finding is round, else the radius of a disc of the mask's area."""
        if self.radius is not None:
            return float(self.radius)
        return float(np.sqrt(np.count_nonzero(self.mask) / np.pi))


def mask_box(mask: np.ndarray) -> list[int]:
    """Bounding box ``[x0, y0, x1, y1]`` (exclusive upper bounds) of the nonzero pixels.

    Raises:
        ValueError: when the mask is empty.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("cannot take the bounding box of an empty mask")
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def finding_from_mask(
    name: str, mask: np.ndarray, center: tuple[float, float] | None = None, radius: float | None = None
) -> Finding:
    """Make a :class:`Finding` whose box is the mask's bounding box.

    Args:
        name: the finding's name.
        mask: boolean or integer H x W mask of the finding.
        center: ``(x, y)``; by default the mask pixel farthest from the mask's border.
        radius: radius in pixels for round findings.

    Returns:
        The finding, with a uint8 0/1 mask.

    Raises:
        ValueError: when the mask is empty (the renderer failed to place the finding).
    """
    binary = np.asarray(mask) > 0
    if not binary.any():
        raise ValueError(f"the {name} finding has an empty mask")
    box = mask_box(binary)
    if center is None:
        x0, y0, x1, y1 = box
        crop = np.pad(binary[y0:y1, x0:x1], 1)
        depth = distance_transform_edt(crop)
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        center = (float(x0 + col - 1), float(y0 + row - 1))
    return Finding(
        name=name,
        mask=binary.astype(np.uint8),
        box=box,
        center=[float(center[0]), float(center[1])],
        radius=None if radius is None else float(radius),
    )


def sample_lung_point(
    layers: ChestLayers, rng: np.random.Generator, clearance: float, occupied: np.ndarray | None = None
) -> tuple[int, int]:
    """Draw a pixel ``(row, col)`` inside the lung fields, at least ``clearance`` pixels from their border.

    Args:
        layers: the chest.
        rng: the only source of randomness.
        clearance: wanted distance to the lung border (and to ``occupied``), in pixels; relaxed
            when no pixel is that deep.
        occupied: pixels to keep away from (other findings), bool H x W.

    Returns:
        The pixel's ``(row, col)``.

    Raises:
        ValueError: when the lungs have no free pixel at all.
    """
    free = layers.lung_mask if occupied is None else layers.lung_mask & ~occupied
    if not free.any():
        raise ValueError("no free lung pixel to place a finding in")
    step = max(1, layers.lung_mask.shape[0] // 128)  # the depth map on a coarser grid is plenty
    coarse = np.pad(free[::step, ::step], 1)
    depth = distance_transform_edt(coarse)[1:-1, 1:-1] * step
    wanted = min(float(clearance), float(depth.max()) * 0.8)
    rows, cols = np.nonzero(depth >= wanted)
    pick = int(rng.integers(len(rows)))
    row = min(int(rows[pick]) * step + int(rng.integers(step)), free.shape[0] - 1)
    col = min(int(cols[pick]) * step + int(rng.integers(step)), free.shape[1] - 1)
    return row, col


def cardiomegaly(layers: ChestLayers) -> Finding:
    """The cardiac silhouette as a finding (the heart itself is enlarged in the anatomy, see
    :func:`radlas_monai.data.synthetic.anatomy.enlarge_heart`).

    Args:
        layers: a chest rendered from an enlarged heart.

    Returns:
        The ``Cardiomegaly`` finding, whose mask is the heart silhouette above the diaphragm.
    """
    return finding_from_mask("Cardiomegaly", layers.geometry.heart_mask())


def cardiothoracic_ratio(heart_mask: np.ndarray, lung_mask: np.ndarray) -> float:
    """Cardiothoracic ratio measured on masks, as a radiologist measures it on a PA film.

    The maximal horizontal width of the heart over the maximal internal thoracic width (the widest
    row-wise extent of the two lung fields together).

    Args:
        heart_mask: H x W mask of the cardiac silhouette.
        lung_mask: H x W mask of the lung fields.

    Returns:
        The ratio (normal < 0.5).

    Raises:
        ValueError: when either mask is empty.
    """
    heart_cols = np.flatnonzero(np.asarray(heart_mask).any(axis=0))
    lung = np.asarray(lung_mask) > 0
    if heart_cols.size == 0 or not lung.any():
        raise ValueError("cardiothoracic ratio needs a non-empty heart mask and lung mask")
    rows = np.flatnonzero(lung.any(axis=1))
    first = np.argmax(lung[rows], axis=1)
    last = lung.shape[1] - 1 - np.argmax(lung[rows, ::-1], axis=1)
    thorax = float((last - first + 1).max())
    return float(heart_cols[-1] - heart_cols[0] + 1) / thorax
