"""FLOPs of a measured step and model FLOPs utilisation (MFU, Chowdhery et al., "PaLM", 2022, appendix B).

``MFU = achieved model FLOP/s / the device's peak dense bf16 FLOP/s``, where the model FLOPs of one step are counted
by :class:`torch.utils.flop_counter.FlopCounterMode` while the real step runs (matrix multiplications, convolutions
and attention, forward and backward; element-wise work is not counted, as usual for MFU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["PEAK_BF16_TFLOPS", "count_flops", "peak_bf16_flops", "model_flops_utilization"]

logger = logging.getLogger(__name__)

PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("GH200", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
    ("RTX A6000", 154.8),
)
"""Dense (non-sparse) bf16 tensor-core peaks in TFLOP/s from the vendor's data sheets, matched by device-name
substring in this order (the first match wins)."""


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of one call of ``run`` (forward and backward, as counted by ``FlopCounterMode``)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return int(counter.get_total_flops())


def peak_bf16_flops(device: str | torch.device, override_tflops: float | None = None) -> float | None:
    """The device's peak dense bf16 FLOP/s: ``override_tflops`` when given, else :data:`PEAK_BF16_TFLOPS`.

    Returns:
        FLOP/s, or None for a CPU or an unknown GPU (MFU is then not reported).
    """
    if override_tflops:
        return float(override_tflops) * 1e12
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops * 1e12
    logger.warning("no bf16 peak known for %r; pass peak_tflops to report MFU", name)
    return None


def model_flops_utilization(flops_per_step: float, seconds_per_step: float, peak_flops: float | None) -> float | None:
    """``flops_per_step / seconds_per_step / peak_flops``, or None without a peak."""
    if not peak_flops or seconds_per_step <= 0:
        return None
    return flops_per_step / seconds_per_step / peak_flops
