"""Contrast-to-noise ratio (CNR) of a lesion map.

``CNR = (mean_in - mean_out) / std_out`` on the min-max-normalised map, with ``in`` the lesion region and ``out``
its complement (optionally restricted to a ``background`` mask such as the lungs); ``std`` is the population
standard deviation. It measures how far the map lifts the lesion above the spread of the map elsewhere; this is
the CNR definition with the background noise in the denominator discussed by Welvaert and Rosseel, "On the
definition of signal-to-noise ratio and contrast-to-noise ratio for fMRI data", PLoS ONE 8(11), 2013, applied to
attribution maps as in lesion-map evaluations of anomaly-detection models. It is undefined (NaN) without pixels in
either region or with a flat background (``std_out == 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radlas_monai.interpret.threshold import normalize_map

__all__ = ["contrast_to_noise_ratio"]


def contrast_to_noise_ratio(heatmap: Any, region: Any, background: Any = None) -> float:
    """CNR of a map with respect to a lesion region.

    Args:
        heatmap: ``(H, W)`` map (normalised here).
        region: ``(H, W)`` lesion mask (nonzero = lesion).
        background: optional ``(H, W)`` mask; ``out`` is then ``background & ~region``.

    Returns:
        ``(mean_in - mean_out) / std_out``, or NaN when undefined (empty region or background, flat background).

    Raises:
        ValueError: on non-2D or differing shapes.
    """
    norm = normalize_map(heatmap)
    inside = np.asarray(region.detach().cpu().numpy() if hasattr(region, "detach") else region) != 0
    if inside.ndim == 3 and inside.shape[0] == 1:
        inside = inside[0]
    if inside.shape != norm.shape:
        raise ValueError(f"region shape {inside.shape} differs from heatmap shape {norm.shape}")
    outside = ~inside
    if background is not None:
        bg = np.asarray(background) != 0
        if bg.shape != norm.shape:
            raise ValueError(f"background shape {bg.shape} differs from heatmap shape {norm.shape}")
        outside &= bg
    if not inside.any() or not outside.any():
        return float("nan")
    out_values = norm[outside].astype(np.float64)
    std = float(out_values.std())
    if std == 0.0:
        return float("nan")
    return (float(norm[inside].astype(np.float64).mean()) - float(out_values.mean())) / std
