"""Full-resolution grounding: a MONAI U-Net reading image, restored image and residual -> lesion logits.

The learned, pixel-level half of RadLAS's grounding (DRAEM's discriminative sub-network: Zavrtanik et al., ICCV
2021). It reads ``concat(image, restored, image - restored)`` at the input's full resolution, five levels deep
(receptive field about 140 px, enough to compare a nodule with its surroundings and to see where the lungs end),
and is fully convolutional: trained on native-resolution crops, applied to whole images. Upsampling is bilinear
(``upsample="nontrainable"``), so maps carry no transposed-convolution checkerboard. The residual is *signed*:
nodules and opacities add density, pneumothorax removes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.nets import BasicUNet

from radlas_monai.networks.unet_utils import exact_upsampling

__all__ = ["UNetGroundingHead", "DEFAULT_GROUNDING_FEATURES"]

#: BasicUNet widths of the grounding head (five levels, about 1.8 M parameters).
DEFAULT_GROUNDING_FEATURES: tuple[int, ...] = (16, 32, 64, 128, 256, 16)


class UNetGroundingHead(nn.Module):
    """``(image, restored) (B, 1, H, W) each -> lesion logits (B, 1, H, W)`` at full resolution.

    Args:
        features: six BasicUNet widths.
        norm: MONAI norm name; batch norm (as DRAEM) keeps absolute contrast levels, so a lesion-free image can map
            to all-background.
        prior_logit: initial output bias (``-4.6``: ``sigmoid = 0.01``, the rare-foreground prior of Lin et al.,
            "Focal loss", ICCV 2017).

    Shapes: ``H`` and ``W`` divisible by 16.
    """

    def __init__(
        self,
        features: Sequence[int] = DEFAULT_GROUNDING_FEATURES,
        norm: tuple | str = ("batch", {"affine": True}),
        prior_logit: float = -4.6,
    ) -> None:
        super().__init__()
        if len(features) != 6:
            raise ValueError(f"need 6 BasicUNet features, got {features}")
        self.unet = BasicUNet(
            spatial_dims=2, in_channels=3, out_channels=1, features=tuple(features), norm=norm, upsample="nontrainable"
        )
        exact_upsampling(self.unet)
        nn.init.constant_(self.unet.final_conv.bias, prior_logit)

    def forward(self, image: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
        """Lesion logits ``(B, 1, H, W)`` for ``image`` versus its ``restored`` healthy counterpart.

        Raises:
            ValueError: for mismatched shapes or ``H, W`` not divisible by 16.
        """
        if not torch.jit.is_tracing() and (
            image.ndim != 4
            or image.shape[1] != 1
            or image.shape != restored.shape
            or image.shape[-2] % 16
            or image.shape[-1] % 16
        ):
            raise ValueError(
                f"expected image and restored of equal shape (B, 1, H, W), H, W divisible by 16; got "
                f"{tuple(image.shape)} and {tuple(restored.shape)}"
            )
        return self.unet(torch.cat([image, restored, image - restored], dim=1))
