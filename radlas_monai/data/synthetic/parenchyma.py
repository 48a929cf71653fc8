"""Findings of the lung parenchyma: nodule, mass and consolidation.

* **Nodule** (< 3 cm): a solid sphere seen in projection, so its path length at distance ``d``
  from the centre is ``2 sqrt(R^2 - d^2)``; the radius ``R(theta)`` is modulated by a few
  angular harmonics (lobulation) and some nodules carry spiculae, thin strands radiating
  into the lung.
* **Mass** (> 3 cm): a larger, irregular, slightly flattened ellipsoid with stronger lobulation,
  sometimes spiculated, denser.
* **Consolidation**: alveolar air replaced by fluid over a lobe or segment, so the opacity is
  proportional to the lung's air path; its border is sharp where a fissure bounds it and
  ill-defined elsewhere; bronchi that keep their air show as dark branching air bronchograms;
  the vessels inside it vanish and it effaces an adjacent heart border or dome (silhouette sign).

All sizes are physical (mm), converted with the image's pixel spacing, so findings scale with
the image size.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from radlas_monai.data.synthetic.anatomy import ChestLayers, smoothstep
from radlas_monai.data.synthetic.findings import BODY_THICKNESS_MM, Finding, finding_from_mask, sample_lung_point
from radlas_monai.data.synthetic.vessels import draw_tree, grow_tree

__all__ = ["render_nodule", "render_mass", "render_consolidation", "smooth_noise"]

_LUNG_TISSUE = 0.2  # relative density of lung parenchyma (replaced by the lesion's tissue)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field with unit variance-ish: ``cells x cells`` Gaussian values, bicubically upsampled."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((shape[1], shape[0]), Image.BICUBIC), dtype=np.float32)


def _round_lesion(
    layers: ChestLayers,
    rng: np.random.Generator,
    name: str,
    radius_mm: float,
    lobulation: float,
    spiculae: int,
    density: float,
    flatten: float,
    occupied: np.ndarray | None,
) -> Finding:
    size = layers.air.shape[0]
    spacing = 350.0 / size  # mm per pixel, see generator.FIELD_OF_VIEW_MM
    radius = max(radius_mm / spacing, 1.5)  # at least a few pixels, even on tiny images
    row, col = sample_lung_point(layers, rng, clearance=0.8 * radius, occupied=occupied)
    cy, cx = row + rng.uniform(-0.5, 0.5), col + rng.uniform(-0.5, 0.5)
    reach = int(math.ceil(radius * (1.0 + 2.5 * lobulation) + (1.3 * radius if spiculae else 0) + 2))
    r0, r1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, size)
    c0, c1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, size)
    dy, dx = np.meshgrid(np.arange(r0, r1) - cy, np.arange(c0, c1) - cx, indexing="ij")
    dist = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dy, dx)
    modulation = np.ones_like(dist)
    for k in range(2, 7):
        amplitude = lobulation * rng.uniform(0.2, 1.0) / math.sqrt(k - 1)
        modulation += amplitude * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    outline = radius * modulation
    # a sphere (or a flattened ellipsoid) in projection: chord length through it
    chord = 2.0 * flatten * np.sqrt(np.clip(outline**2 - dist**2, 0.0, None))
    path_mm = chord * spacing
    attenuation = density * (1.0 - _LUNG_TISSUE) * path_mm / BODY_THICKNESS_MM
    for _ in range(spiculae):
        angle = rng.uniform(-np.pi, np.pi)
        length = radius * rng.uniform(0.4, 1.3)
        along = dx * math.cos(angle) + dy * math.sin(angle)
        across = -dx * math.sin(angle) + dy * math.cos(angle)
        beyond = (along - 0.8 * radius) / length
        strand = np.exp(-((across / (0.5 + 0.04 * radius)) ** 2)) * np.clip(1.0 - beyond, 0.0, 1.0) * (beyond > 0)
        attenuation += density * 0.6 * (3.0 * spacing / BODY_THICKNESS_MM) * strand
    layers.lesion[r0:r1, c0:c1] += attenuation.astype(np.float32)
    mask = np.zeros(layers.air.shape, dtype=bool)
    mask[r0:r1, c0:c1] = dist < outline
    return finding_from_mask(name, mask, center=(cx, cy), radius=radius)


def render_nodule(layers: ChestLayers, rng: np.random.Generator, occupied: np.ndarray | None = None) -> Finding:
    """Render a lung nodule of 10--28 mm diameter into ``layers`` (in place).

    Args:
        layers: the chest; its ``lesion`` layer receives the nodule.
        rng: the only source of randomness.
        occupied: pixels of other findings to keep clear of.

    Returns:
        The ``Nodule`` finding (mask = the nodule's body without spiculae; ``radius`` in pixels).
    """
    spiculated = rng.random() < 0.35
    return _round_lesion(
        layers,
        rng,
        "Nodule",
        radius_mm=float(rng.uniform(5.0, 14.0)),
        lobulation=float(rng.uniform(0.0, 0.08)),
        spiculae=int(rng.integers(6, 14)) if spiculated else 0,
        density=float(rng.uniform(1.3, 2.0)),
        flatten=1.0,
        occupied=occupied,
    )


def render_mass(layers: ChestLayers, rng: np.random.Generator, occupied: np.ndarray | None = None) -> Finding:
    """Render a lung mass of 35--70 mm diameter into ``layers`` (in place).

    Args:
        layers: the chest; its ``lesion`` layer receives the mass.
        rng: the only source of randomness.
        occupied: pixels of other findings to keep clear of.

    Returns:
        The ``Mass`` finding (``radius`` = mean radius in pixels).
    """
    spiculated = rng.random() < 0.4
    return _round_lesion(
        layers,
        rng,
        "Mass",
        radius_mm=float(rng.uniform(17.5, 35.0)),
        lobulation=float(rng.uniform(0.06, 0.16)),
        spiculae=int(rng.integers(8, 20)) if spiculated else 0,
        density=float(rng.uniform(1.0, 1.3)),
        flatten=float(rng.uniform(0.7, 1.0)),
        occupied=occupied,
    )


def _lobar_region(layers: ChestLayers, rng: np.random.Generator, side: int) -> np.ndarray:
    """Weight 0..1 of a lobe or segment of the ``side`` lung: sharp along a fissure, soft elsewhere."""
    geo = layers.geometry
    a, u, v = geo.anatomy, geo.u, geo.v
    q = side * u
    hilum_v = a.hilum_y[side]
    zone = rng.choice(["upper", "lower", "middle", "segment"], p=[0.3, 0.3, 0.2, 0.2])
    if zone == "upper":  # right: bounded below by the horizontal fissure (sharp); left: ill-defined
        fissure = hilum_v + rng.uniform(-0.04, 0.02) + 0.04 * (q - 0.2)
        sharpness = 0.006 if side < 0 else 0.05
        return smoothstep((fissure - v) / sharpness) * smoothstep((v - a.apex_y + 0.02) / 0.08)
    if zone == "lower":  # posterior basal: ill-defined upper border, obscures the dome
        top = hilum_v + rng.uniform(0.08, 0.16) - 0.1 * (q - 0.2)
        return smoothstep((v - top) / 0.06)
    if zone == "middle":  # middle lobe / lingula: abuts the heart border (silhouette sign)
        fissure = hilum_v + rng.uniform(0.0, 0.04)
        heart_border = side * geo.heart_u + 0.5 * a.heart_width
        near_heart = smoothstep((heart_border + 0.14 - q) / 0.05)
        return smoothstep((v - fissure) / 0.006) * near_heart
    row, col = sample_lung_point(layers, rng, clearance=0.04 * geo.size)
    radius = rng.uniform(0.06, 0.11) * geo.size
    yy, xx = np.ogrid[: geo.size, : geo.size]
    rho = np.sqrt(((yy - row) / radius) ** 2 + ((xx - col) / (1.2 * radius)) ** 2)
    return smoothstep((1.0 - rho) / 0.35)


def render_consolidation(layers: ChestLayers, rng: np.random.Generator, occupied: np.ndarray | None = None) -> Finding:
    """Render a lobar or segmental consolidation with air bronchograms into ``layers`` (in place).

    Args:
        layers: the chest; its ``air`` layer loses the alveolar air of the consolidated region.
        rng: the only source of randomness.
        occupied: pixels of other findings (not used for placement; consolidation may surround them).

    Returns:
        The ``Consolidation`` finding (mask = the opacified part of the lung field).
    """
    geo = layers.geometry
    size = geo.size
    for _ in range(8):
        side = int(rng.choice([-1, 1]))
        region = _lobar_region(layers, rng, side)
        # alveolar filling is patchy: confluent in the core, fluffy acinar shadows at the edges
        coarse = smooth_noise(rng, (size, size), 7)
        fine = smooth_noise(rng, (size, size), 24)
        patchy = smoothstep((0.35 * coarse + 0.2 * fine + region - 0.25) / 0.6)
        opacity = patchy * (side * geo.u > 0) * (layers.air > 0)
        mask = (opacity > 0.4) & (layers.lung_side == side)
        if np.count_nonzero(mask) >= (size // 32) ** 2:
            break
    fill = float(rng.uniform(0.55, 0.85))
    hu, hv = geo.hilum(side)
    angles = np.array([-0.9, -0.3, 0.3, 0.9, 1.3]) + rng.normal(0, 0.1, 5)
    angles = angles if side > 0 else np.pi - angles
    tree = grow_tree(rng, (hu, hv), angles, length=0.05, radius=0.0035, levels=4)
    bronchi = draw_tree(geo, tree, blur=0.5 * max(size / 256.0, 1.0))
    # bronchi keep their air only where the surrounding alveoli are filled (air bronchogram)
    kept_air = np.clip(bronchi / (0.006 * geo.anatomy.scale), 0.0, 1.0) * 0.45
    layers.air *= 1.0 - fill * opacity * (1.0 - kept_air)
    return finding_from_mask("Consolidation", mask)
