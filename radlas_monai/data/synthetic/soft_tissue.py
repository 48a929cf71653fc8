"""Soft tissue and extrapulmonary air of a procedural PA chest radiograph.

The body is a flattened cylinder per row (the chest wall is seen tangentially, so it stays thick
almost to the skin line), narrowing to the neck above sloping shoulders, with the arms beside the
chest behind an axillary gap and optional breast shadows over the lower zones. Trachea, main
bronchi and the gastric bubble under the left hemidiaphragm are air inside that tissue.
"""

from __future__ import annotations

import numpy as np

from radlas_monai.data.synthetic.anatomy import SIDES, ChestGeometry, smoothstep

__all__ = ["render_body", "render_airways"]


def render_body(geo: ChestGeometry) -> np.ndarray:
    """Soft-tissue path length of neck, shoulders, chest wall, arms and (optionally) breasts (float32 H x W)."""
    a, u, v = geo.anatomy, geo.u, geo.v
    au = np.abs(u)
    torso = a.lung_half_width + 0.05 + 0.07 * a.habitus
    arm_r = 0.055 + 0.02 * a.habitus
    arm_c = torso + a.arm_gap + arm_r
    outer = arm_c + arm_r
    v_col = np.clip(v, -0.2, 1.2)
    # skin line of neck and shoulders: descends laterally from the base of the neck
    lateral = smoothstep((au - a.neck_half_width) / (outer - a.neck_half_width))
    top = a.shoulder_y + 0.06 * np.sqrt(lateral) + 0.03 * lateral - 1.0 * (au < a.neck_half_width)
    half = outer - (outer - torso) * smoothstep((v_col - a.shoulder_y - 0.2) / 0.1)
    depth = (0.9 + 0.25 * a.habitus) * (0.8 + 0.3 * v_col)
    ratio2 = (au / half) ** 2  # a flattened cross-section: the chest wall is seen tangentially
    body = depth * np.sqrt(np.clip(1.0 - ratio2 * ratio2, 0.0, None)) * np.sqrt(smoothstep((v - top) / 0.06))
    neck = np.sqrt(np.clip(1.0 - (au / a.neck_half_width) ** 2, 0.0, None))
    body = np.maximum(body, 0.55 * neck)
    arm_top = smoothstep((v - a.shoulder_y - 0.12) / 0.08)
    arm = 0.5 * np.sqrt(np.clip(1.0 - ((au - arm_c) / arm_r) ** 2, 0.0, None)) * arm_top
    body = np.maximum(body, arm)
    if a.breast > 0:
        for side in SIDES:
            cu, cv, r = side * 0.2, a.dome_right - 0.09, 0.12
            win = geo.window(cu - 1.2 * r, cu + 1.2 * r, cv - 1.6 * r, cv + r)
            uu, vv = u[win], v[win]
            rho2 = ((uu - cu) / (1.2 * r)) ** 2 + ((vv - cv) / r) ** 2
            pendant = smoothstep((vv - cv + r) / (1.4 * r))
            body[win] += 0.13 * a.breast * smoothstep((1.0 - rho2) / 0.35) * pendant
    return body.astype(np.float32)


def render_airways(geo: ChestGeometry) -> np.ndarray:
    """Air path length of trachea, main bronchi and the gastric bubble (to subtract from the tissue), H x W."""
    a, u, v = geo.anatomy, geo.u, geo.v
    air = np.zeros_like(u)
    carina = min(a.hilum_y.values()) - 0.05
    mid = 0.004
    win = geo.window(mid - 0.03, mid + 0.03, -0.1, carina + 0.03)
    uu, vv = u[win], v[win]
    tube = 0.09 * np.sqrt(np.clip(1.0 - ((uu - mid) / 0.02) ** 2, 0.0, None))
    air[win] += tube * (1.0 - smoothstep((vv - carina) / 0.02)) * smoothstep((vv - 0.02) / 0.05)
    for side in SIDES:
        hu, hv = geo.hilum(side)
        win = geo.window(*sorted((mid, hu)), carina - 0.02, hv + 0.02)
        du, dv = u[win] - mid, v[win] - carina
        t = np.clip((du * (hu - mid) + dv * (hv - carina)) / ((hu - mid) ** 2 + (hv - carina) ** 2), 0.0, 1.0)
        dist2 = (du - t * (hu - mid)) ** 2 + (dv - t * (hv - carina)) ** 2
        air[win] += 0.06 * np.sqrt(np.clip(1.0 - dist2 / 0.014**2, 0.0, None)) * (t < 0.95)
    if a.gastric_bubble > 0:
        cu, cv = 0.16, a.dome_left + 0.05
        win = geo.window(cu - 0.06, cu + 0.06, cv - 0.04, cv + 0.04)
        rho2 = ((u[win] - cu) / 0.055) ** 2 + ((v[win] - cv) / 0.035) ** 2
        air[win] += 0.25 * a.gastric_bubble * np.sqrt(np.clip(1.0 - rho2, 0.0, None)) * (v[win] < cv + 0.008)
    return air
