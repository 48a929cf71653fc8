"""Localization inference latency per image: RadLAS's lesion map versus DenseNet121 + MONAI Grad-CAM.

- ``radlas``: :class:`~radlas_monai.networks.RadLASLesionMap` around a :class:`~radlas_monai.networks.RadLAS` at the
  lesion_localization bundle's inference settings (preset ``tiny``, ``img_size=512``, learned grounding head), in
  eval mode under ``torch.inference_mode()``: encode -> restore -> ground, the full lesion-map path.
- ``densenet121_gradcam``: :class:`~radlas_monai.baselines.gradcam.GradCAMMap`: MONAI's ``DenseNet121`` (14
  ChestX-ray14 outputs) and ``monai.visualize.GradCAM`` on ``class_layers.relu`` - a forward and a backward pass per
  batch, the map upsampled to the image - the post-hoc explanation a user would otherwise run.

Both are timed interleaved at batch 1 and 16 (latency per image = batch time / batch). Weights are freshly
initialised: neither side's cost depends on their values.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import torch

from radlas_monai.benchmarking.inputs import radiograph_batch
from radlas_monai.benchmarking.memory import measure_peak_memory
from radlas_monai.benchmarking.timing import ratio_summary, summarize, time_interleaved

__all__ = ["LOCALIZATION_PRESET", "NUM_CLASSES", "build_gradcam", "build_radlas_map", "localization_row"]

logger = logging.getLogger(__name__)

LOCALIZATION_PRESET = "tiny"
"""The preset the lesion_localization bundle ships."""

NUM_CLASSES = 14
"""DenseNet121 outputs (the ChestX-ray14 findings, CheXNet's setting)."""


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    from radlas_monai.engines.pretrain import autocast_context

    return autocast_context(device, amp)


def build_radlas_map(
    images: torch.Tensor, *, preset: str = LOCALIZATION_PRESET, amp: bool = False, channels_last: bool = False
) -> Callable[[], torch.Tensor]:
    """RadLAS lesion maps of ``images (B, 1, S, S)`` in eval mode under ``torch.inference_mode()``."""
    from radlas_monai.networks import RadLAS, RadLASLesionMap

    torch.manual_seed(0)
    device = images.device
    model = RadLASLesionMap(RadLAS(preset=preset, img_size=int(images.shape[-1]))).to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run() -> torch.Tensor:
        with torch.inference_mode(), _autocast(device, amp):
            return model(images)

    return run


def build_gradcam(
    images: torch.Tensor, *, amp: bool = False, channels_last: bool = False
) -> Callable[[], torch.Tensor]:
    """DenseNet121 + Grad-CAM maps of ``images (B, 1, S, S)`` (forward + backward)."""
    from radlas_monai.baselines.gradcam import GradCAMMap, build_densenet121

    torch.manual_seed(0)
    device = images.device
    network = build_densenet121(NUM_CLASSES).to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    cam = GradCAMMap(network)

    def run() -> torch.Tensor:
        with _autocast(device, amp):
            return cam(images)

    return run


def localization_row(
    batch_size: int,
    image_size: int,
    repeats: int,
    device: str | torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    memory: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """One row of the localization table: both explanations interleaved at one batch size.

    Returns:
        Milliseconds per image of each side, the speedup of RadLAS with its per-round range, and peak memory.
    """
    images, _ = radiograph_batch(batch_size, image_size, device, seed)
    options = {"amp": amp, "channels_last": channels_last}
    builders = {
        "radlas": lambda: build_radlas_map(images, **options),
        "densenet121_gradcam": lambda: build_gradcam(images, **options),
    }
    times = time_interleaved({name: build() for name, build in builders.items()}, repeats, device)
    speedup = ratio_summary(times["densenet121_gradcam"], times["radlas"])
    row: dict[str, Any] = {"size": image_size, "batch": batch_size}
    for name, seconds in times.items():
        row[f"{name}_ms_per_image"] = 1000 * summarize(seconds)["median_s"] / batch_size
    row["speedup"] = speedup["ratio"]
    row["speedup_range"] = [speedup["ratio_min"], speedup["ratio_max"]]
    row["spread"] = max(summarize(seconds)["spread"] for seconds in times.values())
    if memory:
        for name, build in builders.items():
            row[f"{name}_peak_memory_mib"] = measure_peak_memory(build, 2, device).increase_mib
    return row
