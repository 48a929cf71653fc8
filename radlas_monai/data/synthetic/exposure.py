"""From path-length layers to a MONOCHROME2 radiograph: attenuation, detector, display curve, noise.

The line integral of attenuation is ``mu = tissue - (1 - rho * density) * air + k_b * bone +
k_v * vessels * visibility + lesion``: air replaces soft tissue inside the lungs (``rho`` is the
relative density of lung tissue), bone attenuates more than tissue, vessels show only where air
surrounds them. The detector blurs slightly; quantum noise has a variance that grows with
attenuation (fewer photons behind dense structures: ``var(log N) = 1 / N``); a sigmoid
characteristic curve (film-like toe and shoulder) maps ``mu`` to grey values with air = 0, and an
optional unsharp mask mimics the edge enhancement of clinical post-processing. Like an automatic
exposure control, the curve is centred relative to the attenuation of the lung fields, so heavy and
thin patients both get readable lungs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from radlas_monai.data.synthetic.anatomy import ChestLayers

__all__ = ["Exposure", "sample_exposure", "attenuation", "expose"]

BONE_ATTENUATION = 7.5  # per unit bone path, relative to soft tissue (rib path is in anatomy units)
VESSEL_ATTENUATION = 4.0  # anatomy units -> body-thickness units, times tissue/air contrast
LUNG_TISSUE_DENSITY = 0.2  # lung parenchyma relative to soft tissue


@dataclass(frozen=True)
class Exposure:
    """Acquisition and display settings of one radiograph.

    Attributes:
        center: attenuation at the middle of the characteristic curve.
        width: attenuation range of the curve's steep part (smaller = more contrast).
        gamma: display gamma applied after the curve.
        noise: quantum-noise standard deviation (attenuation units) of an unattenuated beam.
        blur: detector blur sigma, in pixels at 256 px.
        sharpen: unsharp-mask gain of the post-processing (0 = none).
    """

    center: float
    width: float
    gamma: float
    noise: float
    blur: float
    sharpen: float


def sample_exposure(rng: np.random.Generator, layers: ChestLayers) -> Exposure:
    """Draw exposure and post-processing settings for a chest (heavier patients are noisier).

    The curve's centre is set a random offset above the median attenuation of the lung fields,
    as an automatic exposure control (its chambers sit behind the lungs) would; pass the healthy
    chest, so that findings added later do not change the exposure.

    Args:
        rng: the only source of randomness.
        layers: the chest to expose.

    Returns:
        An :class:`Exposure`.
    """
    lungs = attenuation(layers)[layers.lung_mask]
    reference = float(np.median(lungs[:: max(1, lungs.size // 4096)])) if lungs.size else 0.5
    habitus = layers.geometry.anatomy.habitus
    return Exposure(
        center=reference + float(rng.uniform(0.07, 0.17)),
        width=float(rng.uniform(0.17, 0.23)),
        gamma=float(rng.uniform(0.85, 1.15)),
        noise=float(rng.uniform(0.003, 0.008) * (1.0 + 0.5 * habitus)),
        blur=float(rng.uniform(0.4, 0.8)),
        sharpen=float(rng.uniform(0.3, 1.2)),
    )


def attenuation(layers: ChestLayers) -> np.ndarray:
    """The attenuation line integral ``mu`` of the layers (float32 H x W, 0 = no body)."""
    air = layers.air
    visibility = np.clip(air / 0.25, 0.0, 1.0)
    mu = layers.tissue - (1.0 - LUNG_TISSUE_DENSITY * layers.lung_density) * air
    mu += BONE_ATTENUATION * layers.bone
    mu += VESSEL_ATTENUATION * layers.vessels * visibility
    mu += layers.lesion
    return np.clip(mu, 0.0, None).astype(np.float32)


def _low_pass(image: np.ndarray, factor: int) -> np.ndarray:
    """A broad blur: block means on a ``factor``-times coarser grid, smoothed, bilinearly upsampled."""
    size = image.shape[0]
    coarse_size = max(size // factor, 4)
    coarse = np.asarray(Image.fromarray(image).resize((coarse_size, coarse_size), Image.BOX), dtype=np.float32)
    coarse = gaussian_filter(coarse, 1.0, mode="nearest")
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), dtype=np.float32)


def expose(layers: ChestLayers, exposure: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Render the radiograph of the layers.

    Args:
        layers: the chest (with any findings already applied).
        exposure: acquisition and display settings.
        rng: randomness of the quantum noise.

    Returns:
        float32 H x W image in [0, 1], MONOCHROME2 (air dark, bone bright).
    """
    mu = attenuation(layers)
    size = mu.shape[0]
    mu = gaussian_filter(mu, exposure.blur * size / 256.0, truncate=3.0)
    noise = rng.standard_normal(mu.shape, dtype=np.float32)
    mu += exposure.noise * np.exp(0.5 * mu) * noise
    center = exposure.center
    floor = 1.0 / (1.0 + math.exp(center / exposure.width))
    grey = 1.0 / (1.0 + np.exp((center - mu) / exposure.width))
    grey = np.clip((grey - floor) / (1.0 - floor), 0.0, 1.0) ** exposure.gamma
    if exposure.sharpen > 0:
        grey += exposure.sharpen * (grey - _low_pass(grey, 8))
    return np.clip(grey, 0.0, 1.0).astype(np.float32)
