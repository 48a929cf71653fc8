"""Findings of the pleural space: effusion and pneumothorax (upright PA film).

* **Effusion**: fluid collects at the base of the hemithorax and climbs the lateral chest wall,
  so its upper surface is a meniscus (higher laterally than medially); below it, fluid replaces
  the lung's air, blunting the costophrenic angle and effacing the dome. The fluid layer thickens
  with depth below the surface, so the meniscus is hazy rather than a line.
* **Pneumothorax**: air in the pleural space lets the lung collapse towards the hilum and base.
  The collapsed lung is the normal lung shrunk by a factor towards a medial-basal anchor (so the
  air rim is widest at the apex and along the lateral wall, as in an upright patient); the rim
  has no lung tissue and no vascular markings; the visceral pleura shows as a thin white line;
  the collapsed lung is a little denser, its vessels crowded.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from radlas_monai.data.synthetic.anatomy import SIDES, ChestLayers, smoothstep
from radlas_monai.data.synthetic.findings import Finding, finding_from_mask

__all__ = ["render_effusion", "render_pneumothorax"]


def _pick_side(layers: ChestLayers, rng: np.random.Generator, avoid: np.ndarray | None) -> int:
    """A random side, preferring one whose lung is not yet taken by another pleural finding."""
    sides = list(SIDES)
    if avoid is not None:
        free = [s for s in sides if not (avoid & (layers.lung_side == s)).any()]
        sides = free or sides
    return int(rng.choice(sides))


def render_effusion(layers: ChestLayers, rng: np.random.Generator, occupied: np.ndarray | None = None) -> Finding:
    """Render a pleural effusion with a meniscus and a blunted costophrenic angle (in place).

    Args:
        layers: the chest; its ``air`` layer loses the air the fluid displaces.
        rng: the only source of randomness.
        occupied: pixels of other findings; a side with a pleural finding already is avoided.

    Returns:
        The ``Effusion`` finding (mask = the opacified part of the lung field).
    """
    geo = layers.geometry
    a = geo.anatomy
    side = _pick_side(layers, rng, occupied)
    lung = layers.lung_side == side
    for _ in range(8):
        height = float(rng.uniform(0.04, 0.2))  # small blunting .. large effusion
        meniscus = float(rng.uniform(0.06, 0.12))
        win = geo.window(*sorted((0.0, side * (a.lung_half_width + 0.03))), a.apex_y, 1.2)
        u, v = geo.u[win], geo.v[win]
        q = side * u
        medial = geo.medial_wall(v, side)
        lateral = geo.lateral_wall(v)
        across = np.clip((q - medial) / np.maximum(lateral - medial, 1e-3), 0.0, 1.0)
        # the meniscus: flat medially, climbing the lateral chest wall
        surface = a.dome_y[side] - height + meniscus * (1.0 - across**2)
        fluid = 0.9 * smoothstep((v - surface) / 0.06) ** 0.7
        # a thin lamella of fluid climbs further up the lateral wall
        lamella = 0.35 * smoothstep((across - 0.8) / 0.2) * smoothstep((v - surface + 0.1) / 0.08)
        fluid = np.maximum(fluid, lamella) * (q > 0)
        mask = np.zeros_like(lung)
        mask[win] = (fluid > 0.3) & lung[win]
        if np.count_nonzero(mask) >= (geo.size // 40) ** 2:
            break
    layers.air[win] = np.clip(layers.air[win] - fluid, 0.0, None)
    return finding_from_mask("Effusion", mask)


def render_pneumothorax(layers: ChestLayers, rng: np.random.Generator, occupied: np.ndarray | None = None) -> Finding:
    """Render an apical-lateral pneumothorax with a visible pleural line (in place).

    Args:
        layers: the chest; its ``lung_density``, ``vessels`` and ``lesion`` layers change.
        rng: the only source of randomness.
        occupied: pixels of other findings; a side with a pleural finding already is avoided.

    Returns:
        The ``Pneumothorax`` finding (mask = the pleural air rim inside the lung field).
    """
    geo = layers.geometry
    a = geo.anatomy
    side = _pick_side(layers, rng, occupied)
    collapse = float(rng.uniform(0.68, 0.9))  # linear size of the collapsed lung
    anchor_v = a.dome_y[side] - 0.03
    anchor_u = side * (geo.medial_wall(np.float32(anchor_v), side) + 0.03)
    win = geo.window(*sorted((0.0, side * (a.lung_half_width + 0.03))), a.apex_y - 0.02, a.dome_y[side] + 0.2)
    u, v = geo.u[win], geo.v[win]
    # a pixel belongs to the collapsed lung where its pre-image under the shrinking lies in the lung
    pre_u = anchor_u + (u - anchor_u) / collapse
    pre_v = anchor_v + (v - anchor_v) / collapse
    collapsed_margin = geo.lung_margin(pre_u, pre_v, side) * collapse
    inside_chest = geo.lung_margin(u, v, side) > 0
    rim = inside_chest & (collapsed_margin <= 0)
    mask = np.zeros(layers.lung_mask.shape, dtype=bool)
    mask[win] = rim & (layers.lung_side[win] == side)
    # lung tissue: none in the rim, crowded in the collapsed lung
    density = layers.lung_density[win]
    on_side = side * u > 0
    density[on_side & rim] = 0.0
    density[on_side & ~rim] *= 1.0 / collapse**2
    # vessels of the collapsed lung are the original ones, shrunk towards the anchor
    x, y = geo.to_pixel(pre_u, pre_v)
    crowded = map_coordinates(layers.vessels, [y, x], order=1, mode="constant")
    vessels = layers.vessels[win]
    vessels[on_side] = (crowded * (collapsed_margin > 0))[on_side]
    # the visceral pleura: a thin line along the collapsed lung's edge
    width = 0.7 / (geo.size * a.scale)
    line = np.exp(-((collapsed_margin / width) ** 2)) * inside_chest
    layers.lesion[win] += (0.05 * line).astype(np.float32)
    return finding_from_mask("Pneumothorax", mask)
