"""Shape primitives shared by the lesion families: soft profiles, rotated coordinates and smooth noise.

Everything here is batched over lesions (leading dimension ``N``), written with torch operations only, and runs on
whatever device its inputs live on. Randomness comes exclusively from an explicit ``torch.Generator``; nothing here
touches a global random number generator.

Smooth noise is made the cheap way: Gaussian noise on a tiny lattice, summed over a few octaves at that lattice's
resolution, then *sampled* at each lesion's own scaled coordinates by separable cubic interpolation (two small matrix
products). This is orders of magnitude cheaper than blurring full-resolution white noise with large Gaussian kernels,
and it ties the texture scale to the lesion (or to millimetres) rather than to the patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["smoothstep", "rotated_coords", "smooth_noise", "interpolation_matrix", "sample_field", "sphere_profile", "box_mean"]


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Hermite smoothstep ``3t^2 - 2t^3`` of ``t = clamp(x, 0, 1)``: exactly 0 for ``x <= 0``, exactly 1 for ``x >= 1``.

    Args:
        x: any tensor.

    Returns:
        A tensor of the same shape with values in [0, 1].
    """
    t = x.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def rotated_coords(
    dy: torch.Tensor, dx: torch.Tensor, semi_axes: torch.Tensor, angle: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of every patch pixel in each lesion's own rotated, axis-normalised frame.

    Args:
        dy: row offsets from the lesion centres, broadcastable to ``(N, 1, Ph, Pw)`` (e.g. ``(N, 1, Ph, 1)``), in mm.
        dx: column offsets from the lesion centres, broadcastable to ``(N, 1, Ph, Pw)`` (e.g. ``(N, 1, 1, Pw)``).
        semi_axes: ``(N, 2)`` semi-axes ``(a, b)`` of the lesion ellipse along its own u and v axes, in mm (> 0).
        angle: ``(N,)`` rotation of the u axis from the image x axis, in radians.

    Returns:
        ``(u, v)``, each ``(N, 1, Ph, Pw)``: ``u**2 + v**2 < 1`` inside the ellipse.
    """
    cos = torch.cos(angle).view(-1, 1, 1, 1)
    sin = torch.sin(angle).view(-1, 1, 1, 1)
    a = semi_axes[:, 0].view(-1, 1, 1, 1)
    b = semi_axes[:, 1].view(-1, 1, 1, 1)
    u = (dx * cos + dy * sin) / a
    v = (dy * cos - dx * sin) / b
    return u, v


def smooth_noise(
    num: int,
    grid: int,
    generator: torch.Generator,
    device: torch.device | str,
    octaves: int = 3,
    persistence: float = 0.5,
    channels: int = 1,
) -> torch.Tensor:
    """Multi-octave smooth Gaussian noise on a small ``grid x grid`` lattice (fractal "value noise").

    Octave ``k`` (0 = coarsest) is white noise on a ``grid / 2**(octaves-1-k)`` lattice, upsampled bicubically to
    ``grid`` and weighted by ``persistence**k``, so coarse octaves dominate and finer ones add detail. The sum is
    normalised to unit standard deviation (in expectation), so thresholds mean the same thing at every setting.

    Args:
        num: number of independent fields ``N``.
        grid: side of the output lattice (e.g. 16); the finest octave has features of about one lattice cell.
        generator: the only source of randomness; must live on ``device``.
        device: where to create the noise.
        octaves: number of octaves (>= 1).
        persistence: amplitude ratio between successive (finer) octaves, in (0, 1].
        channels: independent noise channels per field.

    Returns:
        ``(N, channels, grid, grid)`` float32 noise.

    Raises:
        ValueError: when ``grid`` is smaller than ``2**(octaves-1)`` or ``octaves < 1``.
    """
    if octaves < 1 or grid < 2 ** (octaves - 1):
        raise ValueError(f"smooth_noise needs octaves >= 1 and grid >= 2**(octaves-1), got {octaves=}, {grid=}")
    total = None
    norm = 0.0
    for k in range(octaves):
        size = max(2, grid // 2 ** (octaves - 1 - k))
        amp = persistence**k
        field = torch.randn((num, channels, size, size), generator=generator, device=device)
        if size != grid:
            field = F.interpolate(field, size=(grid, grid), mode="bicubic", align_corners=False)
        total = amp * field if total is None else total + amp * field
        norm += amp * amp
    assert total is not None
    return total / (norm**0.5)


def interpolation_matrix(coords: torch.Tensor, size: int, scale: float) -> torch.Tensor:
    """Catmull-Rom (cubic) interpolation weights that sample a lattice of ``size`` nodes at ``coords``.

    Coordinates follow ``grid_sample(align_corners=False)``: ``[-scale, scale]`` spans the lattice's outer edges;
    beyond them the border nodes are repeated.

    Args:
        coords: ``(N, P)`` sample positions.
        size: number of lattice nodes ``g``.
        scale: the coordinate of the lattice's edge.

    Returns:
        ``(N, P, g)`` weights; ``weights @ values`` interpolates ``values`` (``(N, g, ...)``) at ``coords``.
    """
    position = ((coords / scale + 1.0) * size - 1.0) / 2.0
    position = position.clamp(0.0, size - 1.0)
    base = torch.floor(position)
    t = (position - base)[..., None]
    t2, t3 = t * t, t * t * t
    weights = torch.cat(
        (
            (-t3 + 2 * t2 - t) / 2,
            (3 * t3 - 5 * t2 + 2) / 2,
            (-3 * t3 + 4 * t2 + t) / 2,
            (t3 - t2) / 2,
        ),
        dim=-1,
    )
    taps = (base.long()[..., None] + torch.arange(-1, 3, device=coords.device)).clamp(0, size - 1)
    matrix = torch.zeros((*coords.shape, size), dtype=weights.dtype, device=coords.device)
    return matrix.scatter_add_(-1, taps, weights)


def sample_field(field: torch.Tensor, u: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Sample per-lesion fields on per-lesion *axis-aligned* coordinate grids (separable cubic interpolation).

    Because the grid is separable (``u`` depends on the column only, ``v`` on the row only), sampling is two small
    batched matrix products instead of a per-pixel ``grid_sample``, an order of magnitude faster on the CPU. Noise is
    statistically isotropic, so lesions do not need rotated noise coordinates.

    Args:
        field: ``(N, K, g, g)`` fields, one per lesion (e.g. from :func:`smooth_noise`).
        u: column coordinates, any shape with ``N * Pw`` elements (e.g. ``(N, 1, 1, Pw)``); ``[-scale, scale]``
            spans the whole field.
        v: row coordinates, any shape with ``N * Ph`` elements (e.g. ``(N, 1, Ph, 1)``), same convention.
        scale: the coordinate value that maps onto the field's border.

    Returns:
        ``(N, K, Ph, Pw)`` sampled values.
    """
    num, _, rows, cols = field.shape
    weights_x = interpolation_matrix(u.reshape(num, -1), cols, scale)
    weights_y = interpolation_matrix(v.reshape(num, -1), rows, scale)
    return torch.matmul(torch.matmul(weights_y[:, None], field), weights_x[:, None].transpose(-1, -2))


def sphere_profile(rho: torch.Tensor, sharpness: torch.Tensor | float = 0.5) -> torch.Tensor:
    """Projected thickness of a (soft) sphere: ``(1 - rho^2)^p`` inside ``rho < 1``, exactly 0 outside.

    ``p = 0.5`` is the exact chord length through a uniform ball, i.e. how a solid round nodule attenuates an X-ray
    beam; larger ``p`` gives an ill-defined, fading margin, smaller ``p`` a sharper one.

    Args:
        rho: normalised radius (>= 0), any shape.
        sharpness: exponent ``p`` (scalar or broadcastable tensor), > 0.

    Returns:
        Values in [0, 1], same shape as ``rho``.
    """
    inside = (1.0 - rho * rho).clamp_min(0.0)
    return inside.pow(sharpness)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over ``(2r+1) x (2r+1)`` neighbourhoods with zero padding, from separable running sums.

    (Stride-1 pooling kernels are slow on the CPU; two cumulative sums are not.) Sums of 0/1 values are exact.

    Args:
        x: ``(N, C, h, w)``.
        radius: ``r >= 0``.

    Returns:
        ``(N, C, h, w)`` means.
    """
    if radius <= 0:
        return x
    size = 2 * radius + 1
    running = F.pad(x, (radius + 1, radius, radius + 1, radius)).cumsum(dim=2)
    rows = running[..., size:, :] - running[..., :-size, :]
    running = rows.cumsum(dim=3)
    return (running[..., size:] - running[..., :-size]) / float(size * size)
