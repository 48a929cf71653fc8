"""Branching trees: pulmonary vessels radiating from the hila, and bronchi for air bronchograms.

A tree grows level by level (all branches of a level at once): every branch forks into two
children that turn by a random angle, shorten and thin out, like the pulmonary arteries do.
Segments are drawn with Pillow into a float image whose value is the vessel diameter (the
path length through a cylinder seen side-on), then softened by a sub-pixel blur.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from radlas_monai.data.synthetic.anatomy import SIDES, ChestGeometry

__all__ = ["grow_tree", "draw_tree", "render_vessels"]


def grow_tree(
    rng: np.random.Generator,
    root: tuple[float, float],
    angles: np.ndarray,
    length: float,
    radius: float,
    levels: int = 5,
    spread: tuple[float, float] = (0.25, 0.55),
    shrink: tuple[float, float] = (0.72, 0.86),
) -> np.ndarray:
    """Grow a binary branching tree in anatomy coordinates.

    Args:
        rng: the only source of randomness.
        root: ``(u, v)`` where all trunks start.
        angles: trunk directions in radians (0 = +u, pi/2 = +v, i.e. downwards).
        length: trunk length in anatomy units.
        radius: trunk radius in anatomy units.
        levels: number of generations after the trunks.
        spread: range of the turn of each child, radians.
        shrink: range of the length ratio child / parent.

    Returns:
        An ``N x 5`` float array of segments ``(u0, v0, u1, v1, radius)``.
    """
    n = len(angles)
    start = np.tile(np.asarray(root, dtype=np.float64), (n, 1))
    theta = np.asarray(angles, dtype=np.float64)
    lengths = np.full(n, length) * rng.uniform(0.85, 1.15, n)
    radii = np.full(n, radius)
    segments = []
    for _ in range(levels + 1):
        bend = rng.normal(0.0, 0.15, len(theta))
        theta = theta + bend
        end = start + lengths[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        segments.append(np.column_stack([start, end, radii]))
        turn = rng.uniform(*spread, size=(len(theta), 2)) * np.array([1.0, -1.0])
        turn *= np.where(rng.random(len(theta)) < 0.5, 1.0, 0.6)[:, None]  # asymmetric forks
        theta = (theta[:, None] + turn).ravel()
        start = np.repeat(end, 2, axis=0)
        lengths = np.repeat(lengths, 2) * rng.uniform(*shrink, size=2 * len(lengths))
        radii = np.repeat(radii, 2) * rng.uniform(0.68, 0.8, size=2 * len(radii))
    return np.concatenate(segments, axis=0)


def _splat_thin(canvas: np.ndarray, x0, y0, x1, y1, fill) -> None:
    """Rasterise thin segments at once: points every half pixel along each, max-combined."""
    lengths = np.hypot(x1 - x0, y1 - y0)
    counts = np.maximum(np.ceil(2.0 * lengths).astype(int), 1) + 1
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    t = (np.arange(owner.size) - starts[owner]) / (counts[owner] - 1).clip(min=1)
    cols = np.rint(x0[owner] + t * (x1 - x0)[owner]).astype(np.int64)
    rows = np.rint(y0[owner] + t * (y1 - y0)[owner]).astype(np.int64)
    size = canvas.shape[0]
    keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    np.maximum.at(canvas, (rows[keep], cols[keep]), fill[owner][keep].astype(np.float32))


def draw_tree(geo: ChestGeometry, segments: np.ndarray, blur: float = 0.6) -> np.ndarray:
    """Rasterise tree segments into a float32 H x W map of path length (anatomy units).

    Branches wider than a pixel are drawn with Pillow; thinner ones are splatted at once with
    their partial-volume share of the diameter.

    Args:
        geo: maps anatomy coordinates to pixels.
        segments: ``N x 5`` rows ``(u0, v0, u1, v1, radius)`` from :func:`grow_tree`.
        blur: Gaussian sigma in pixels applied after drawing (partial-volume softening).

    Returns:
        The rasterised tree, value ~ the diameter of the thickest branch over each pixel.
    """
    size = geo.size
    x0, y0 = geo.to_pixel(segments[:, 0], segments[:, 1])
    x1, y1 = geo.to_pixel(segments[:, 2], segments[:, 3])
    width_px = 2.0 * segments[:, 4] * geo.anatomy.scale * size
    fill = 2.0 * segments[:, 4] * np.minimum(width_px, 1.0)
    thick = width_px >= 1.5
    canvas = Image.new("F", (size, size), 0.0)
    draw = ImageDraw.Draw(canvas)
    for i in np.flatnonzero(thick)[np.argsort(-width_px[thick])]:  # thick first
        xy = [(float(x0[i]), float(y0[i])), (float(x1[i]), float(y1[i]))]
        draw.line(xy, fill=float(fill[i]), width=int(round(width_px[i])))
    image = np.array(canvas, dtype=np.float32)
    thin = ~thick
    _splat_thin(image, x0[thin], y0[thin], x1[thin], y1[thin], fill[thin])
    return gaussian_filter(image, blur, truncate=3.0) if blur > 0 else image


def render_vessels(geo: ChestGeometry, rng: np.random.Generator) -> np.ndarray:
    """Pulmonary vessels of both lungs as path length (float32 H x W, anatomy units).

    Vessels fan out from each hilum: upwards to the apex, laterally, and (the largest) down to
    the bases. The map is not clipped to the lungs: vessels only show where air surrounds them,
    which :mod:`.exposure` accounts for.

    Args:
        geo: the chest shapes.
        rng: the only source of randomness.

    Returns:
        The vessel layer.
    """
    trees = []
    for side in SIDES:
        base = np.array([-1.2, -0.75, -0.3, 0.15, 0.55, 0.95, 1.3])
        angles = base + rng.normal(0.0, 0.08, len(base))
        # mirror for the image-left lung: angle measured from the lateral direction
        angles = angles if side > 0 else np.pi - angles
        trees.append(grow_tree(rng, geo.hilum(side), angles, length=0.055, radius=0.009, levels=6))
    segments = np.concatenate(trees, axis=0)
    vessels = draw_tree(geo, segments, blur=0.5 * max(geo.size / 256.0, 1.0) ** 0.5)
    # the hila: pulmonary arteries and veins crowd where the trees start
    for side in SIDES:
        hu, hv = geo.hilum(side)
        hu += side * 0.015
        win = geo.window(hu - 0.06, hu + 0.06, hv - 0.08, hv + 0.08)
        rho2 = ((geo.u[win] - hu) / 0.03) ** 2 + ((geo.v[win] - hv) / 0.05) ** 2
        vessels[win] += 0.018 * np.exp(-rho2)
    return vessels
