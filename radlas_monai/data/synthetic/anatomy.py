"""Normal chest anatomy of a procedural posterior-anterior (PA) chest radiograph.

The chest is modelled as a projection: every structure contributes a *path length* through the
body along the beam (a thickness map), and :mod:`.exposure` turns the summed attenuation into a
MONOCHROME2 image. Soft tissue fills the body outline; the lungs replace tissue by air (so they
are dark); the heart and the diaphragm domes are tissue that pushes the lung air away (their
borders are the silhouettes a radiologist reads); bones and vessels add attenuation on top.

Coordinates: ``(u, v)`` are *anatomy* coordinates in units of the image width, ``u`` lateral and
signed (0 on the patient's midline, positive towards the image right = the patient's left in a PA
view), ``v`` vertical (0 at the top). The image grid maps onto them through a small rotation,
scale and shift per patient, so every shape scales with the image size.
A *side* is ``-1`` for the image-left lung (patient right) and ``+1`` for the image-right lung
(patient left); ``q = side * u`` is the lateral distance from the midline on that side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

__all__ = [
    "SIDES",
    "ChestAnatomy",
    "ChestGeometry",
    "ChestLayers",
    "sample_chest_anatomy",
    "enlarge_heart",
    "smoothstep",
    "render_chest",
]

#: image-left lung (patient right) and image-right lung (patient left)
SIDES: tuple[int, int] = (-1, 1)


def smoothstep(x: np.ndarray | float) -> np.ndarray:
    """Cubic Hermite step: 0 below 0, 1 above 1, smooth in between."""
    t = np.clip(x, 0.0, 1.0)
    out = 3.0 - 2.0 * t
    out *= t
    out *= t
    return out


@dataclass(frozen=True)
class ChestAnatomy:
    """The parameters of one patient's normal chest, in anatomy units (fractions of the image width).

    Draw one with :func:`sample_chest_anatomy`; the fields are plain floats so that a sample can
    be logged or reproduced. Heart geometry is given by its horizontal extent (``heart_width``) so
    that the cardiothoracic ratio is explicit.
    """

    center_x: float  # image x of the midline
    shift_y: float  # vertical shift of the whole chest
    rotation: float  # in-plane rotation, radians
    scale: float  # overall size of the chest in the field of view
    habitus: float  # 0 thin .. 1 heavy: soft-tissue margin, thickness and noise
    apex_y: float  # lung apices
    apex_q: float  # lateral position of the apices
    widest_y: float  # level of the widest rib cage
    lung_half_width: float  # internal thoracic half-width at the widest level
    mediastinum_half_width: float
    aortic_knob: float  # bulge of the aortic arch into the left lung
    knob_y: float
    dome_right: float  # top of the right hemidiaphragm (image left), the higher one
    dome_left: float
    dome_depth: float  # how far the costophrenic angles lie below the dome tops
    heart_width: float  # horizontal extent of the cardiac silhouette
    heart_right_fraction: float  # share of the heart width right of the midline (image left)
    heart_height: float  # short semi-axis of the heart ellipse
    heart_tilt: float  # radians; the apex points down and to the patient's left
    neck_half_width: float
    shoulder_y: float
    arm_gap: float  # width of the axillary gap between chest wall and arm
    rib_first_y: float
    rib_spacing: float
    rib_growth: float  # rib spacing grows towards the bases
    rib_arch: float  # how much posterior ribs rise laterally
    anterior_slope: float  # how steeply anterior ribs descend medially
    clavicle_y: float
    hilum_right_y: float
    hilum_left_y: float
    breast: float  # 0 = no breast shadows
    gastric_bubble: float  # 0 = none

    @property
    def hilum_y(self) -> dict[int, float]:
        return {-1: self.hilum_right_y, 1: self.hilum_left_y}

    @property
    def dome_y(self) -> dict[int, float]:
        return {-1: self.dome_right, 1: self.dome_left}

    @property
    def nominal_ctr(self) -> float:
        """Heart width over internal thoracic width, from the parameters (the rendered value is measured)."""
        return self.heart_width / (2.0 * self.lung_half_width)


def sample_chest_anatomy(rng: np.random.Generator) -> ChestAnatomy:
    """Draw a normal chest: size, rotation, inspiration depth, habitus and heart size vary.

    Args:
        rng: the only source of randomness.

    Returns:
        A :class:`ChestAnatomy` with a normal cardiothoracic ratio (0.38--0.48).
    """
    u = rng.uniform
    habitus = float(u(0.0, 1.0))
    apex_y = float(u(0.08, 0.12))
    lung_half_width = float(u(0.32, 0.365))
    dome_right = float(u(0.64, 0.74))  # inspiration depth
    hilum_right_y = float(u(0.40, 0.45))
    return ChestAnatomy(
        center_x=float(0.5 + np.clip(rng.normal(0.0, 0.012), -0.03, 0.03)),
        shift_y=float(u(-0.03, 0.03)),
        rotation=float(np.deg2rad(u(-4.0, 4.0))),
        scale=float(u(1.0, 1.12)),
        habitus=habitus,
        apex_y=apex_y,
        apex_q=float(u(0.12, 0.16)),
        widest_y=float(u(0.55, 0.65)),
        lung_half_width=lung_half_width,
        mediastinum_half_width=float(u(0.065, 0.08)),
        aortic_knob=float(u(0.02, 0.04)),
        knob_y=float(u(0.27, 0.32)),
        dome_right=dome_right,
        dome_left=dome_right + float(u(0.015, 0.045)),
        dome_depth=float(u(0.06, 0.1)),
        heart_width=float(u(0.40, 0.49)) * 2.0 * lung_half_width,
        heart_right_fraction=float(u(0.30, 0.42)),
        heart_height=float(u(0.11, 0.14)),
        heart_tilt=float(u(0.55, 0.8)),
        neck_half_width=float(u(0.09, 0.12)),
        shoulder_y=float(u(0.02, 0.07)),
        arm_gap=float(u(0.0, 0.05)),
        rib_first_y=apex_y + float(u(-0.005, 0.02)),
        rib_spacing=float(u(0.048, 0.058)),
        rib_growth=float(u(0.002, 0.005)),
        rib_arch=float(u(0.06, 0.1)),
        anterior_slope=float(u(0.15, 0.22)),
        clavicle_y=apex_y + float(u(0.05, 0.09)),
        hilum_right_y=hilum_right_y,
        hilum_left_y=hilum_right_y - float(u(0.0, 0.02)),
        breast=float(u(0.4, 1.0)) if u() < 0.4 else 0.0,
        gastric_bubble=float(u(0.5, 1.0)) if u() < 0.6 else 0.0,
    )


def enlarge_heart(anatomy: ChestAnatomy, ctr: float) -> ChestAnatomy:
    """Return the same chest with a cardiac silhouette of the given cardiothoracic ratio.

    Args:
        anatomy: a chest.
        ctr: the target ratio of heart width to internal thoracic width (cardiomegaly: > 0.5).

    Returns:
        A copy whose heart is wider (and a little taller), with the same centre of its right border.

    Raises:
        ValueError: when ``ctr`` is not in (0, 1).
    """
    if not 0.0 < ctr < 1.0:
        raise ValueError(f"cardiothoracic ratio must lie in (0, 1), got {ctr}")
    width = ctr * 2.0 * anatomy.lung_half_width
    growth = width / anatomy.heart_width
    return replace(
        anatomy,
        heart_width=width,
        heart_right_fraction=anatomy.heart_right_fraction * (0.85 + 0.15 / max(growth, 1e-6)),
        heart_height=anatomy.heart_height * (1.0 + 0.35 * (growth - 1.0)),
    )


class ChestGeometry:
    """The anatomy's implicit shapes, evaluable at any anatomy coordinates.

    Args:
        anatomy: the chest parameters.
        image_size: side length of the square image in pixels.
    """

    def __init__(self, anatomy: ChestAnatomy, image_size: int) -> None:
        self.anatomy = anatomy
        self.size = int(image_size)
        a = anatomy
        self._cos, self._sin = math.cos(a.rotation), math.sin(a.rotation)
        centres = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size - 0.5
        dy, dx = np.meshgrid(centres, centres, indexing="ij")
        xr = self._cos * dx + self._sin * dy
        yr = -self._sin * dx + self._cos * dy
        #: lateral anatomy coordinate of every pixel (H x W)
        self.u = (xr / a.scale - (a.center_x - 0.5)).astype(np.float32)
        #: vertical anatomy coordinate of every pixel (H x W)
        self.v = (yr / a.scale + 0.5 - a.shift_y).astype(np.float32)
        # heart ellipse: the right border sits at -right_fraction * width
        self.heart_u = a.heart_width * (0.5 - a.heart_right_fraction)
        self.heart_v = a.dome_left - 0.07
        sin_t, cos_t = math.sin(a.heart_tilt), math.cos(a.heart_tilt)
        half = a.heart_width / 2.0
        self.heart_b = a.heart_height
        self.heart_a = math.sqrt(max(half**2 - (self.heart_b * sin_t) ** 2, (0.5 * half) ** 2)) / cos_t

    # ------------------------------------------------------------------ coordinates
    def to_pixel(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map anatomy coordinates to pixel coordinates ``(x, y)`` (x = column, y = row, continuous)."""
        a = self.anatomy
        xr = a.scale * (np.asarray(u) + a.center_x - 0.5)
        yr = a.scale * (np.asarray(v) - 0.5 + a.shift_y)
        dx = self._cos * xr - self._sin * yr
        dy = self._sin * xr + self._cos * yr
        return (dx + 0.5) * self.size - 0.5, (dy + 0.5) * self.size - 0.5

    def window(self, u0: float, u1: float, v0: float, v1: float) -> tuple[slice, slice]:
        """Pixel rows and columns that cover the anatomy rectangle ``[u0, u1] x [v0, v1]``.

        Structures are rendered inside their window only, which keeps a render fast.
        """
        x, y = self.to_pixel(np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1]))
        rows = slice(int(np.clip(np.floor(y.min()), 0, self.size)), int(np.clip(np.ceil(y.max()) + 1, 0, self.size)))
        cols = slice(int(np.clip(np.floor(x.min()), 0, self.size)), int(np.clip(np.ceil(x.max()) + 1, 0, self.size)))
        return rows, cols

    # ------------------------------------------------------------------ shapes
    def lateral_wall(self, v: np.ndarray) -> np.ndarray:
        """Inner rib-cage half-width ``q`` of the lung's lateral border at height ``v``."""
        a = self.anatomy
        t = np.clip((v - a.apex_y) / (a.widest_y - a.apex_y), 0.0, 1.0)
        grow = np.sqrt(1.0 - (1.0 - t) ** 2)
        taper = 0.15 * np.clip(v - a.widest_y, 0.0, None)
        return a.apex_q + (a.lung_half_width - a.apex_q) * grow - taper

    def medial_wall(self, v: np.ndarray, side: int) -> np.ndarray:
        """Lateral distance ``q`` of the mediastinal border of the ``side`` lung at height ``v``."""
        a = self.anatomy
        edge = a.mediastinum_half_width + 0.006 * smoothstep((v - 0.2) / 0.2)
        if side > 0:  # left mediastinal contour: aortic knob, then the pulmonary trunk
            edge = edge + a.aortic_knob * np.exp(-(((v - a.knob_y) / 0.035) ** 2))
            edge = edge + 0.5 * a.aortic_knob * np.exp(-(((v - a.knob_y - 0.085) / 0.03) ** 2))
        t = np.clip((v - a.apex_y) / (0.55 * (a.widest_y - a.apex_y)), 0.0, 1.0)
        return a.apex_q - (a.apex_q - edge) * np.sqrt(1.0 - (1.0 - t) ** 2)

    def dome(self, q: np.ndarray, side: int) -> np.ndarray:
        """Height ``v`` of the hemidiaphragm of ``side`` at lateral distance ``q`` (deepest laterally)."""
        a = self.anatomy
        top_q = 0.5 * a.lung_half_width
        x = (q - top_q) / (a.lung_half_width - top_q)
        lateral = np.maximum(x, 0.0)
        lateral2 = lateral * lateral
        return a.dome_y[side] + a.dome_depth * (0.3 * x * x + lateral2 * (0.5 + 0.4 * lateral2))

    def lung_margin(self, u: np.ndarray, v: np.ndarray, side: int) -> np.ndarray:
        """Approximate distance inside the ``side`` lung field (negative outside), heart ignored."""
        q = side * u
        lateral = self.lateral_wall(v) - q
        medial = q - self.medial_wall(v, side)
        base = self.dome(q, side) - v
        return np.minimum(np.minimum(lateral, medial), base)

    def heart_rho2(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Squared normalised radius of the heart ellipse (< 1 inside)."""
        cos_t, sin_t = math.cos(self.anatomy.heart_tilt), math.sin(self.anatomy.heart_tilt)
        du, dv = u - self.heart_u, v - self.heart_v
        along = cos_t * du + sin_t * dv
        across = -sin_t * du + cos_t * dv
        return (along / self.heart_a) ** 2 + (across / self.heart_b) ** 2

    def heart_mask(self) -> np.ndarray:
        """The cardiac silhouette above the diaphragm, boolean H x W."""
        mask = np.zeros(self.u.shape, dtype=bool)
        reach = max(self.heart_a, self.heart_b)
        win = self.window(self.heart_u - reach, self.heart_u + reach, self.heart_v - reach, self.heart_v + reach)
        u, v = self.u[win], self.v[win]
        floor = np.where(u < 0, self.dome(-u, -1), self.dome(u, 1))
        mask[win] = (self.heart_rho2(u, v) < 1.0) & (v < floor)
        return mask

    def hilum(self, side: int) -> tuple[float, float]:
        """Anatomy coordinates ``(u, v)`` of the ``side`` hilum."""
        a = self.anatomy
        return side * (a.mediastinum_half_width + 0.035), a.hilum_y[side]


@dataclass
class ChestLayers:
    """Path-length layers of one chest; findings edit them before :mod:`.exposure` composes the image.

    All arrays are float32 H x W in body-thickness units (1.0 = the AP thickness of the mid chest),
    except the masks.

    Attributes:
        geometry: the shapes the layers were rendered from.
        tissue: soft-tissue path length of the body outline.
        air: air path length inside the lungs (replaces tissue).
        lung_density: lung tissue per unit of air path (1 = normal; 0 = pleural air, no lung).
        bone: bone path length.
        vessels: vessel path length (only visible where surrounded by air).
        lesion: extra attenuation added by findings outside the lungs' air (e.g. spiculae).
        lung_mask: visible lung fields (not behind heart or diaphragm), bool.
        lung_side: 0 outside the lungs, -1 / +1 for the image-left / image-right lung, int8.
    """

    geometry: ChestGeometry
    tissue: np.ndarray
    air: np.ndarray
    lung_density: np.ndarray
    bone: np.ndarray
    vessels: np.ndarray
    lesion: np.ndarray
    lung_mask: np.ndarray
    lung_side: np.ndarray


def _lung_air(geo: ChestGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Air path length of both lungs, the visible lung mask and the side label of every lung pixel."""
    a, u, v = geo.anatomy, geo.u, geo.v
    air = np.zeros_like(u)
    lung_mask = np.zeros(u.shape, dtype=bool)
    side_map = np.zeros(u.shape, dtype=np.int8)
    bottom = max(a.dome_y.values()) + a.dome_depth * 1.8 + 0.08
    for side in SIDES:
        win = geo.window(*sorted((0.0, side * (a.lung_half_width + 0.01))), a.apex_y - 0.01, bottom)
        uu, vv = u[win], v[win]
        q = side * uu
        margin = geo.lung_margin(uu, vv, side)
        dome = geo.dome(q, side)
        # the lung reaches below the dome top in the posterior recesses; the diaphragm pushes it away
        outer = np.minimum(margin, dome + 0.035 - vv)
        depth = 0.45 + 0.3 * np.clip((vv - a.apex_y) / (dome - a.apex_y), 0.0, 1.0)
        side_air = depth * np.sqrt(np.clip(outer / 0.05, 0.0, 1.0))
        diaphragm = 0.9 * smoothstep((vv - dome) / 0.04) ** 0.5
        air[win] += np.clip(side_air - diaphragm, 0.0, None) * (q > 0)
        visible = margin > 0
        lung_mask[win] |= visible
        side_map[win][visible] = side
    # the heart (an ellipsoid of tissue) pushes the lung air aside
    reach = max(geo.heart_a, geo.heart_b)
    win = geo.window(geo.heart_u - reach, geo.heart_u + reach, geo.heart_v - reach, geo.heart_v + reach)
    rho2 = geo.heart_rho2(u[win], v[win])
    air[win] = np.clip(air[win] - 0.9 * np.sqrt(np.clip(1.0 - rho2, 0.0, None)), 0.0, None)
    lung_mask[win] &= rho2 >= 1.0
    side_map[win][rho2 < 1.0] = 0
    return air.astype(np.float32), lung_mask, side_map


def render_chest(anatomy: ChestAnatomy, image_size: int, rng: np.random.Generator) -> ChestLayers:
    """Render the path-length layers of a normal chest.

    Args:
        anatomy: the chest parameters (see :func:`sample_chest_anatomy`).
        image_size: side length of the square image in pixels.
        rng: randomness for the vessel tree and bone detail.

    Returns:
        The :class:`ChestLayers`, ready for findings and exposure.
    """
    # these build on ChestGeometry above, so they are imported here rather than at the top
    from radlas_monai.data.synthetic.skeleton import render_skeleton
    from radlas_monai.data.synthetic.soft_tissue import render_airways, render_body
    from radlas_monai.data.synthetic.vessels import render_vessels

    geo = ChestGeometry(anatomy, image_size)
    # the body outline is smooth: render it on a grid half as fine and upsample
    coarse = render_body(ChestGeometry(anatomy, max(image_size // 2, 16)))
    body = np.asarray(Image.fromarray(coarse).resize((geo.size, geo.size), Image.BILINEAR), dtype=np.float32)
    tissue = body - render_airways(geo)
    air, lung_mask, lung_side = _lung_air(geo)
    zeros = np.zeros_like(air)
    return ChestLayers(
        geometry=geo,
        tissue=np.clip(tissue, 0.0, None),
        air=air,
        lung_density=np.ones_like(air),
        bone=render_skeleton(geo, rng) * smoothstep(body / 0.15),
        vessels=render_vessels(geo, rng),
        lesion=zeros,
        lung_mask=lung_mask,
        lung_side=lung_side,
    )
