"""Task I grounding loss: supervise the learned grounding head with the synthetic lesion mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["GroundingLoss"]


class GroundingLoss(_Loss):
    """Binary cross-entropy + soft Dice between grounding logits and the synthetic lesion mask.

    With logits ``z``, ``p = sigmoid(z)`` and target ``y`` in ``[0, 1]`` (image ``b``, pixels ``i``)::

        BCE_b  = mean_i [ -y_i log p_i - (1 - y_i) log(1 - p_i) ]
        Dice_b = 1 - (2 sum_i p_i y_i + s_nr) / (sum_i p_i + sum_i y_i + s_dr)
        L      = bce_weight * mean_b BCE_b + dice_weight * mean_{b : sum_i y_i > 0} Dice_b

    BCE counts every image (lesion-free images must learn an empty map). Dice, computed with MONAI's
    :class:`~monai.losses.DiceLoss` (``sigmoid=True``; Milletari et al., "V-Net", 3DV 2016), counts
    only images with a non-empty mask: on an empty mask Dice is ~1 for any non-zero prediction and
    would only fight the BCE. The target is used as given (soft masks, e.g. soft-edged synthetic
    lesions, are valid for both terms) unless ``mask_threshold`` is set, in which case it is
    binarised as ``y > mask_threshold``. This is the discriminative objective of DRAEM (Zavrtanik et
    al., ICCV 2021).

    Pixel balance: lesions cover a few percent of the pixels, so plain BCE is dominated by the easy background
    (lung borders, ribs and the image edge then decide the map). ``focal_gamma > 0`` replaces BCE by the focal loss
    (Lin et al., "Focal loss for dense object detection", ICCV 2017)
    ``FL_i = (1 - p_t,i)^gamma * BCE_i`` with ``p_t = p y + (1 - p)(1 - y)``, which down-weights the
    well-classified background; ``pos_weight`` up-weights lesion pixels in the (focal) BCE.

    Args:
        bce_weight: weight ``>= 0`` of the BCE term.
        dice_weight: weight ``>= 0`` of the Dice term.
        mask_threshold: binarise the target at this value (None: keep it soft).
        focal_gamma: focusing parameter ``gamma >= 0`` (0: plain BCE).
        pos_weight: weight ``> 0`` of lesion pixels in the (focal) BCE.
        smooth_nr: Dice numerator smoothing.
        smooth_dr: Dice denominator smoothing.
        reduction: ``"mean"``, ``"sum"`` (sums over images of both terms) or ``"none"``: a ``(B,)``
            tensor ``bce_weight * BCE_b + dice_weight * Dice_b`` with Dice taken as 0 on empty masks.

    Shapes: ``logits`` and ``target`` ``(B, 1, H, W)``.

    Raises:
        ValueError: for negative weights or mismatched shapes (the message prints them).
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        mask_threshold: float | None = None,
        focal_gamma: float = 0.0,
        pos_weight: float = 1.0,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if bce_weight < 0 or dice_weight < 0 or focal_gamma < 0 or pos_weight <= 0:
            raise ValueError(
                f"need bce_weight, dice_weight, focal_gamma >= 0 and pos_weight > 0, got bce_weight={bce_weight}, "
                f"dice_weight={dice_weight}, focal_gamma={focal_gamma}, pos_weight={pos_weight}"
            )
        self.focal_gamma = float(focal_gamma)
        self.pos_weight = float(pos_weight)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.mask_threshold = mask_threshold
        self.dice = DiceLoss(sigmoid=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction="none")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss (see the class docstring for the formula and shapes)."""
        if logits.ndim != 4 or logits.shape[1] != 1 or logits.shape != target.shape:
            raise ValueError(
                f"logits and target must both be (B, 1, H, W) of one shape, got {tuple(logits.shape)} and "
                f"{tuple(target.shape)}"
            )
        target = target.to(logits.dtype)
        target = (target > self.mask_threshold).to(logits.dtype) if self.mask_threshold is not None else target
        target = target.clamp(0.0, 1.0)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.focal_gamma > 0:
            prob = torch.sigmoid(logits)
            p_t = prob * target + (1.0 - prob) * (1.0 - target)
            bce = (1.0 - p_t).pow(self.focal_gamma) * bce
        if self.pos_weight != 1.0:
            bce = bce * (1.0 + (self.pos_weight - 1.0) * target)
        bce = bce.flatten(1).mean(1)
        has_lesion = target.flatten(1).sum(1) > 0
        dice = self.dice(logits, target).reshape(-1) if self.dice_weight > 0 else torch.zeros_like(bce)
        dice = torch.where(has_lesion, dice, torch.zeros_like(dice))
        if self.reduction == LossReduction.NONE.value:
            return self.bce_weight * bce + self.dice_weight * dice
        if self.reduction == LossReduction.SUM.value:
            return self.bce_weight * bce.sum() + self.dice_weight * dice.sum()
        n_lesion = has_lesion.sum().clamp_min(1).to(dice.dtype)
        return self.bce_weight * bce.mean() + self.dice_weight * dice.sum() / n_lesion
