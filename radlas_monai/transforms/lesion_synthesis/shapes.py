"""Shape primitives shared by the lesion families: soft profiles, rotated coordinates, smooth noise, box filters.

Pixel-sized work is written with torch operations and runs on whatever device its inputs live on; per-lesion
geometry (a few numbers per lesion, or one row of numbers per patch row) is computed with numpy on the CPU, where
an operation costs a microsecond instead of a device dispatch, and uploaded once. Randomness comes exclusively from
an explicit ``torch.Generator``; nothing here touches a global random number generator.

Smooth noise is made the cheap way: Gaussian noise on a tiny lattice, summed over a few octaves at that lattice's
resolution, then *sampled* at each lesion's own scaled coordinates by separable cubic interpolation (two small
batched matrix products with weights built from the patch's row and column coordinates). This is orders of
magnitude cheaper than blurring full-resolution white noise with large Gaussian kernels, and it ties the texture
scale to the lesion (or to millimetres) rather than to the patch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "smoothstep",
    "sphere_profile",
    "rotated_coords",
    "smooth_noise",
    "interpolation_matrix",
    "sample_field",
    "box_mean",
]

# Catmull-Rom weights of the taps -1, 0, 1, 2 as a cubic in t: weights = [1, t, t^2, t^3] @ _CATMULL_ROM
_CATMULL_ROM = 0.5 * np.array(
    [[0.0, 2.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.0], [2.0, -5.0, 4.0, -1.0], [-1.0, 3.0, -3.0, 1.0]], dtype=np.float64
)


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Hermite smoothstep ``3t^2 - 2t^3`` of ``t = clamp(x, 0, 1)``: exactly 0 for ``x <= 0``, exactly 1 for ``x >= 1``.

    Args:
        x: any tensor.

    Returns:
        A tensor of the same shape with values in [0, 1].
    """
    t = x.clamp(0.0, 1.0)
    return t.mul(-2.0).add_(3.0).mul_(t).mul_(t)


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
    return (1.0 - rho * rho).clamp_(min=0.0).pow_(sharpness)


def ellipse_frame(radius: np.ndarray, minor: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, ...]:
    """The four per-lesion terms :func:`rotated_coords` reads, for ellipses with semi-axes ``radius`` and ``minor``.

    Args:
        radius: ``(N,)`` semi-axis along the rotated u axis, in mm.
        minor: ``(N,)`` semi-axis along the v axis, in mm.
        angle: ``(N,)`` rotation from the image x axis, in radians.

    Returns:
        ``(cos/radius, sin/radius, cos/minor, sin/minor)``, each ``(N,)``.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    return cos / radius, sin / radius, cos / minor, sin / minor


def rotated_coords(dy: torch.Tensor, dx: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of every patch pixel in each lesion's own rotated, axis-normalised frame.

    Args:
        dy: row offsets from the lesion centres, ``(N, 1, Ph, 1)``, in mm.
        dx: column offsets from the lesion centres, ``(N, 1, 1, Pw)``, in mm.
        frame: ``(N, 4, 1, 1)``: ``cos(angle) / a``, ``sin(angle) / a``, ``cos(angle) / b``, ``sin(angle) / b`` for
            semi-axes ``a`` (along the rotated u axis) and ``b`` (v axis), ``angle`` from the image x axis.

    Returns:
        ``(u, v)``, each ``(N, 1, Ph, Pw)``: ``u**2 + v**2 < 1`` inside the ellipse.
    """
    u = dx * frame[:, 0:1] + dy * frame[:, 1:2]
    v = dy * frame[:, 2:3] - dx * frame[:, 3:4]
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
    total = torch.randn((num, channels, grid, grid), generator=generator, device=device)
    norm = persistence ** (2 * (octaves - 1))
    total.mul_(persistence ** (octaves - 1))
    for k in range(octaves - 1):
        size = max(2, grid // 2 ** (octaves - 1 - k))
        coarse = torch.randn((num, channels, size, size), generator=generator, device=device)
        total.add_(F.interpolate(coarse, size=(grid, grid), mode="bicubic", align_corners=False), alpha=persistence**k)
        norm += persistence ** (2 * k)
    return total.mul_(1.0 / norm**0.5)


def interpolation_matrix(coords: np.ndarray, size: int, scale: float | np.ndarray) -> np.ndarray:
    """Catmull-Rom (cubic) interpolation weights that sample a lattice of ``size`` nodes at ``coords`` (numpy).

    Coordinates follow ``grid_sample(align_corners=False)``: ``[-scale, scale]`` spans the lattice's outer edges;
    beyond them the border nodes are repeated.

    Args:
        coords: ``(N, P)`` sample positions.
        size: number of lattice nodes ``g``.
        scale: the coordinate of the lattice's edge (a number, or ``(N, 1)`` per row of ``coords``).

    Returns:
        ``(N, P, g)`` float32 weights; ``weights @ values`` interpolates ``values`` (``(N, g, ...)``) at ``coords``.
    """
    position = np.clip(((np.asarray(coords, dtype=np.float64) / scale + 1.0) * size - 1.0) / 2.0, 0.0, size - 1.0)
    base = np.floor(position)
    t = (position - base)[..., None]
    weights = np.concatenate((np.ones_like(t), t, t * t, t * t * t), axis=-1) @ _CATMULL_ROM
    taps = np.clip(base.astype(np.int64)[..., None] + np.arange(-1, 3), 0, size - 1)
    matrix = np.zeros((position.size, size), dtype=np.float32)
    rows = np.arange(position.size)
    taps, weights = taps.reshape(-1, 4), weights.reshape(-1, 4)
    for tap in range(4):  # within one tap the (row, node) pairs are distinct, so += accumulates correctly
        matrix[rows, taps[:, tap]] += weights[:, tap]
    return matrix.reshape(*position.shape, size)


def sample_field(field: torch.Tensor, weights_y: torch.Tensor, weights_x: torch.Tensor) -> torch.Tensor:
    """Sample per-lesion fields on separable (axis-aligned) grids: ``weights_y @ field @ weights_x^T``.

    Noise is statistically isotropic, so lesions do not need rotated noise coordinates, and the separable product is
    an order of magnitude faster than a per-pixel ``grid_sample`` on the CPU.

    Args:
        field: ``(N, K, g, g)`` fields, one per lesion (e.g. from :func:`smooth_noise`).
        weights_y: ``(N, Ph, g)`` row weights (see :func:`interpolation_matrix`).
        weights_x: ``(N, Pw, g)`` column weights.

    Returns:
        ``(N, K, Ph, Pw)`` sampled values.
    """
    return torch.matmul(torch.matmul(weights_y[:, None], field), weights_x[:, None].transpose(-1, -2))


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
