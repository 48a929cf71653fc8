"""Task I loss: lesion-weighted restoration of the healthy radiograph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import SSIMLoss
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["LesionWeightedReconstructionLoss"]


class LesionWeightedReconstructionLoss(_Loss):
    """Smooth-L1 restoration loss that up-weights the synthetic lesion, optionally plus SSIM.

    For image ``b`` with restored ``r``, healthy target ``h`` and lesion mask ``m`` (in ``[0, 1]``)::

        w_p   = 1 + lesion_weight * m_p
        e_p   = 0.5 * (r_p - h_p)**2 / beta   if |r_p - h_p| < beta   else   |r_p - h_p| - 0.5 * beta
        L1_b  = sum_p w_p e_p / sum_p w_p
        L_b   = L1_b + ssim_weight * (1 - SSIM(r_b, h_b))

    i.e. a weighted mean Huber / smooth-L1 error (Girshick, "Fast R-CNN", ICCV 2015; ``beta = 0`` is the
    plain absolute error), normalised by the weight sum so the scale does not depend on the lesion area, plus
    MONAI's :class:`~monai.losses.SSIMLoss` (Wang et al., "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004). Without a mask the first term is the plain mean error. The lesion
    up-weighting follows the DRAEM reconstruction objective (Zavrtanik et al., ICCV 2021), where the corrupted
    region is what the restorer must learn to replace.

    Why smooth-L1 (``beta > 0``) by default: most pixels are unchanged by the synthesis, and the plain L1
    gradient has the same magnitude however small the residual is, so near the identity the unchanged pixels
    pull every residual back to zero with full force and the restorer stays an identity map (measured: after
    60 AdamW steps the lesion error was unchanged with ``beta = 0``, halved with ``beta = 0.05``). The
    quadratic zone makes small residuals on normal anatomy cheap, so the lesion pixels drive learning.

    Args:
        lesion_weight: ``lambda >= 0`` multiplying the mask in the pixel weights.
        beta: smooth-L1 transition point ``>= 0`` in intensity units (0: plain L1).
        ssim_weight: weight ``>= 0`` of the SSIM term (0 disables it and skips its computation).
        ssim_win_size: SSIM Gaussian window size (odd, at most the image size).
        data_range: intensity range of the images (1.0 for the project's ``[0, 1]`` convention).
        reduction: ``"mean"`` / ``"sum"`` over images, or ``"none"`` for a ``(B,)`` tensor.

    Shapes: ``restored``, ``healthy`` ``(B, C, H, W)``; ``lesion_mask`` ``(B, 1 or C, H, W)`` or None.

    Raises:
        ValueError: for negative weights or mismatched shapes (the message prints them).
    """

    def __init__(
        self,
        lesion_weight: float = 5.0,
        beta: float = 0.05,
        ssim_weight: float = 0.0,
        ssim_win_size: int = 7,
        data_range: float = 1.0,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if lesion_weight < 0 or ssim_weight < 0 or beta < 0:
            raise ValueError(
                f"lesion_weight, beta and ssim_weight must be >= 0, got {lesion_weight}, {beta}, {ssim_weight}"
            )
        if ssim_win_size < 1 or ssim_win_size % 2 == 0:
            raise ValueError(f"ssim_win_size must be a positive odd integer, got {ssim_win_size}")
        self.lesion_weight = float(lesion_weight)
        self.beta = float(beta)
        self.ssim_weight = float(ssim_weight)
        self.ssim_win_size = ssim_win_size
        self.ssim = SSIMLoss(spatial_dims=2, data_range=data_range, win_size=ssim_win_size, reduction="none")

    def _check(self, restored: torch.Tensor, healthy: torch.Tensor, lesion_mask: torch.Tensor | None) -> None:
        if restored.ndim != 4 or restored.shape != healthy.shape:
            raise ValueError(
                f"restored and healthy must both be (B, C, H, W) of one shape, got {tuple(restored.shape)} and "
                f"{tuple(healthy.shape)}"
            )
        if lesion_mask is not None:
            b, c, h, w = restored.shape
            if (
                lesion_mask.ndim != 4
                or lesion_mask.shape[0] != b
                or lesion_mask.shape[1] not in (1, c)
                or tuple(lesion_mask.shape[2:]) != (h, w)
            ):
                raise ValueError(
                    f"lesion_mask must be (B, 1 or C, H, W) = ({b}, 1 or {c}, {h}, {w}), got {tuple(lesion_mask.shape)}"
                )
        if self.ssim_weight > 0 and min(restored.shape[-2:]) < self.ssim_win_size:
            raise ValueError(
                f"image size {tuple(restored.shape[-2:])} is smaller than ssim_win_size {self.ssim_win_size}"
            )

    def forward(
        self, restored: torch.Tensor, healthy: torch.Tensor, lesion_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the loss (see the class docstring for the formula and shapes)."""
        self._check(restored, healthy, lesion_mask)
        if self.beta > 0:
            error = F.smooth_l1_loss(restored, healthy, reduction="none", beta=self.beta)
        else:
            error = (restored - healthy).abs()
        if lesion_mask is None or self.lesion_weight == 0:
            per_image = error.flatten(1).mean(1)
        else:
            weight = (1.0 + self.lesion_weight * lesion_mask.to(error.dtype).clamp(0.0, 1.0)).expand_as(error)
            per_image = (weight * error).flatten(1).sum(1) / weight.flatten(1).sum(1)
        if self.ssim_weight > 0:
            ssim = self.ssim(restored, healthy).reshape(restored.shape[0], -1).mean(1)
            per_image = per_image + self.ssim_weight * ssim
        if self.reduction == LossReduction.MEAN.value:
            return per_image.mean()
        if self.reduction == LossReduction.SUM.value:
            return per_image.sum()
        return per_image
