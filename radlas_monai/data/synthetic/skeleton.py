"""Bones of a procedural PA chest radiograph: ribs, clavicles, spine and humeral heads.

Each bone is a tube seen side-on; its projected path length has the cortical-shell profile
``sqrt(1 - z^2) - (1 - m) * sqrt(r^2 - z^2)`` across the tube (``z`` the normalised distance from
the centre line, ``r`` the inner radius, ``m`` the relative marrow density), which is why rib
borders look brighter than rib centres on a radiograph.

Posterior ribs arch from the spine up towards the lateral chest wall; anterior ribs run from the
lateral wall obliquely down and medially and fade where the costal cartilage begins. All ribs of
one family share one shape, so they are rendered at once as a phase field: the vertical
coordinate is straightened along the rib shape and mapped to a continuous rib index whose
spacing grows towards the bases.
"""

from __future__ import annotations

import numpy as np

from radlas_monai.data.synthetic.anatomy import SIDES, ChestGeometry, smoothstep

__all__ = ["tube_profile", "render_skeleton"]


def tube_profile(z: np.ndarray, inner: float = 0.7, marrow: float = 0.35) -> np.ndarray:
    """Projected path length across a hollow bone tube of outer radius 1.

    Args:
        z: signed distance from the centre line in units of the outer radius.
        inner: inner (medullary) radius relative to the outer one.
        marrow: density of the medulla relative to cortex.

    Returns:
        Path length, 0 outside ``|z| < 1``.
    """
    z2 = z * z
    outer = np.sqrt(np.clip(1.0 - z2, 0.0, None))
    medulla = np.sqrt(np.clip(inner * inner - z2, 0.0, None))
    return outer - (1.0 - marrow) * medulla


class _RibFamily:
    """The cross-section profile of a family of ribs as a function of the straightened height ``w``.

    Rib ``k`` is centred at ``first + spacing * (k + fill / 2) + growth * k^2 / 2`` (spacing grows
    towards the bases) and covers the fraction ``fill`` of its period; the last two ribs fade out.
    As the profile depends on ``w`` alone it is tabulated once and looked up per pixel.
    """

    _SAMPLES = 4096

    def __init__(self, first: float, spacing: float, growth: float, count: int, fill: float) -> None:
        self.start = first - 0.05
        stop = first + spacing * (count + 1) + growth * (count + 1) ** 2 / 2.0
        self.step = (stop - self.start) / self._SAMPLES
        w = self.start + self.step * np.arange(self._SAMPLES)
        disc = np.clip(spacing * spacing + 2.0 * growth * (w - first), 0.0, None)
        k = np.where(w < first, -1.0, (np.sqrt(disc) - spacing) / growth)
        frac = k - np.floor(k)
        fade = (k >= 0) * (1.0 - smoothstep((k - count + 2.0) / 2.0))
        profile = tube_profile(np.where(frac < fill, 2.0 * frac / fill - 1.0, 2.0))
        self.table = (profile * fade).astype(np.float32)
        self.table[[0, -1]] = 0.0  # lookups outside the table read zero

    def __call__(self, w: np.ndarray) -> np.ndarray:
        index = ((w - self.start) * (1.0 / self.step)).astype(np.int32)
        return np.take(self.table, index, mode="clip")


def _ribs(geo: ChestGeometry, rng: np.random.Generator, bone: np.ndarray) -> None:
    a = geo.anatomy
    radius = a.rib_spacing * 0.45 * 0.5
    last = a.rib_first_y + 10 * a.rib_spacing + 50 * a.rib_growth
    posterior = _RibFamily(a.rib_first_y, a.rib_spacing, a.rib_growth, 10, 0.46)
    anterior = _RibFamily(a.rib_first_y - 0.6 * a.rib_arch + 0.02, 1.05 * a.rib_spacing, a.rib_growth, 7, 0.5)
    for side in SIDES:
        win = geo.window(*sorted((0.0, side * (a.lung_half_width + 0.06))), a.rib_first_y - 0.12, last + 0.1)
        u, v = geo.u[win], geo.v[win]
        wall = np.maximum(geo.lateral_wall(v) + 0.015, 0.05)
        p = side * u / wall
        jitter = float(rng.uniform(-0.004, 0.004))
        # posterior ribs: rise laterally (upper ribs more), turn down along the lateral wall
        arch = a.rib_arch * (1.4 - 0.5 * np.clip((v - a.apex_y) / 0.55, 0.0, 1.0))
        w_post = v + arch * np.sin(np.clip(p, 0.0, 1.3) * (np.pi / 1.25)) + jitter
        post = posterior(w_post) * smoothstep((p - 0.04) / 0.06) * (p < 1.1)
        # anterior ribs: descend medially from the lateral wall, fade at the costal cartilage
        lateral = np.clip(1.0 - p, 0.0, None)
        w_ant = v - a.anterior_slope * lateral - 0.1 * lateral * lateral + jitter
        ant = anterior(w_ant) * smoothstep((p - 0.3) / 0.25) * (p < 1.05)
        bone[win] += radius * (post + 0.6 * ant)


def _clavicles(geo: ChestGeometry, bone: np.ndarray) -> None:
    a = geo.anatomy
    reach = a.lung_half_width + 0.06
    radius = 0.017
    for side in SIDES:
        win = geo.window(*sorted((0.0, side * reach)), a.clavicle_y - 0.1, a.clavicle_y + 0.06)
        u, v = geo.u[win], geo.v[win]
        p = side * u / reach
        centre = a.clavicle_y - 0.04 * p + 0.012 * np.sin(2.0 * np.pi * p)
        z = (v - centre) / (radius * (1.0 + 0.35 * np.clip(1.0 - 4.0 * p, 0.0, None)))
        fade = smoothstep((p - 0.1) / 0.05) * (1.0 - smoothstep((p - 0.95) / 0.06))
        bone[win] += radius * 1.6 * tube_profile(z, inner=0.6, marrow=0.4) * fade


def _spine(geo: ChestGeometry, bone: np.ndarray) -> None:
    a = geo.anatomy
    win = geo.window(-0.06, 0.06, -0.2, 1.2)
    u, v = geo.u[win], geo.v[win]
    half = 0.032 + 0.012 * np.clip(v, 0.0, 1.0)
    body = tube_profile(u / half, inner=0.85, marrow=0.55)
    level = (v - a.apex_y + 0.05) / 0.042
    frac = level - np.floor(level)
    disc = 1.0 - 0.3 * smoothstep((frac - 0.8) / 0.08) * (1.0 - smoothstep((frac - 0.94) / 0.06))
    endplate = 1.0 + 0.12 * np.exp(-(((frac - 0.78) / 0.04) ** 2)) + 0.12 * np.exp(-(((frac - 0.02) / 0.04) ** 2))
    pedicles = np.zeros_like(u)
    for side in SIDES:
        rho2 = ((u - side * 0.62 * half) / (0.22 * half)) ** 2 + ((frac - 0.35) / 0.2) ** 2
        pedicles += np.exp(-((rho2 - 1.0) ** 2) / 0.15) * (np.abs(u) < half)
    spinous = np.exp(-((u / (0.12 * half)) ** 2) - ((frac - 0.65) / 0.15) ** 2)
    bone[win] += 0.5 * half * (body * disc * endplate + 0.3 * pedicles + 0.3 * spinous)


def _humeral_heads(geo: ChestGeometry, bone: np.ndarray) -> None:
    a = geo.anatomy
    torso = a.lung_half_width + 0.05 + 0.07 * a.habitus
    centre_q, centre_v = torso + a.arm_gap + 0.05, a.shoulder_y + 0.13
    radius = 0.075
    for side in SIDES:
        cu = side * centre_q
        win = geo.window(cu - radius, cu + radius, centre_v - radius, centre_v + radius)
        rho2 = ((geo.u[win] - cu) / radius) ** 2 + ((geo.v[win] - centre_v) / radius) ** 2
        bone[win] += 0.5 * radius * tube_profile(np.sqrt(rho2), inner=0.9, marrow=0.35)


def render_skeleton(geo: ChestGeometry, rng: np.random.Generator) -> np.ndarray:
    """Bone path length of ribs, clavicles, spine and shoulders (float32 H x W, body-thickness units).

    Args:
        geo: the chest shapes.
        rng: randomness for small per-side irregularities.

    Returns:
        The bone layer.
    """
    bone = np.zeros_like(geo.u)
    _ribs(geo, rng, bone)
    _clavicles(geo, bone)
    _spine(geo, bone)
    _humeral_heads(geo, bone)
    return bone
