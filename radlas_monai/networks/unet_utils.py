"""Small helpers shared by the full-resolution U-Nets (restorer and grounding head)."""

from __future__ import annotations

import torch.nn as nn
from monai.networks.nets.basic_unet import UpCat

__all__ = ["exact_upsampling"]


def exact_upsampling(unet: nn.Module) -> nn.Module:
    """Turn off BasicUNet's odd-size padding check in every ``UpCat`` of ``unet`` (returned, changed in place).

    The RadLAS U-Nets only accept ``H, W`` divisible by 16, where upsampled and skip features always have equal sizes;
    without the data-dependent shape comparison the network traces exactly (no ``TracerWarning``) for any such size.
    """
    for module in unet.modules():
        if isinstance(module, UpCat):
            module.is_pad = False
    return unet
