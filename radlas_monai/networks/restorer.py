"""Full-resolution convolutional restorer: the healthy image from a (synthetically) lesioned radiograph.

Task I's restoration at the input's own resolution. Lesions are far smaller than a ViT token (median JSRT nodule:
radius 10.7 px at 512 px, 2.7 px at 128 px), so restoring them from tokens upsampled 16x loses them; a fully
convolutional U-Net restores at pixel level, trains on native-resolution crops and applies to whole images of any
size divisible by 16. Built on MONAI's :class:`~monai.networks.nets.BasicUNet` with non-trainable (bilinear)
upsampling, so no transposed-convolution checkerboard reaches the residual.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.nets import BasicUNet

from radlas_monai.networks.unet_utils import exact_upsampling

__all__ = ["ConvRestorer", "DEFAULT_RESTORER_FEATURES"]

#: BasicUNet widths of the restorer (five levels, about 1.8 M parameters).
DEFAULT_RESTORER_FEATURES: tuple[int, ...] = (16, 32, 64, 128, 256, 16)


class ConvRestorer(nn.Module):
    """``image (B, 1, H, W) -> restored healthy image (B, 1, H, W)`` in ``[0, 1]``.

    The network predicts a bounded correction: ``restored = clamp(image - max_change * tanh(f(image)), 0, 1)``.
    Starting from the identity (the last convolution is zero-initialised) keeps healthy anatomy untouched from the
    first step; the restoration loss then teaches ``f`` to remove what the synthesizer added (Zavrtanik et al.,
    "DRAEM", ICCV 2021, reconstructive sub-network).

    Args:
        features: six BasicUNet widths (five resolution levels and the output level).
        norm: MONAI norm name.
        max_change: largest intensity change the restorer may make at a pixel.

    Shapes: ``H`` and ``W`` divisible by 16.
    """

    def __init__(
        self,
        features: Sequence[int] = DEFAULT_RESTORER_FEATURES,
        norm: tuple | str = ("batch", {"affine": True}),
        max_change: float = 0.3,
    ) -> None:
        super().__init__()
        if len(features) != 6 or max_change <= 0:
            raise ValueError(f"need 6 features and max_change > 0, got features={features}, max_change={max_change}")
        self.unet = BasicUNet(
            spatial_dims=2, in_channels=1, out_channels=1, features=tuple(features), norm=norm, upsample="nontrainable"
        )
        exact_upsampling(self.unet)
        nn.init.zeros_(self.unet.final_conv.weight)
        nn.init.zeros_(self.unet.final_conv.bias)
        self.max_change = float(max_change)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Restored healthy image ``(B, 1, H, W)`` in ``[0, 1]``.

        Raises:
            ValueError: for input other than ``(B, 1, H, W)`` with ``H, W`` divisible by 16.
        """
        if not torch.jit.is_tracing() and (
            image.ndim != 4 or image.shape[1] != 1 or image.shape[-2] % 16 or image.shape[-1] % 16
        ):
            raise ValueError(f"ConvRestorer expects (B, 1, H, W) with H, W divisible by 16, got {tuple(image.shape)}")
        return (image - self.max_change * torch.tanh(self.unet(image))).clamp(0.0, 1.0)
