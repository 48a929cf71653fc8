"""Task I grounding loss: supervise the learned grounding head with the synthetic lesion mask."""

from __future__ import annotations

import numpy as np
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

    Per-lesion Dice (``dice_mode="lesion"``): image Dice lets one large lesion outweigh several small ones, and
    nodules are the small ones. Each connected component ``k`` of the binarised target (8-connectivity, at
    ``y > 0.5``) gets its own soft Dice inside its bounding box ``W_k`` grown by half its size plus 2 px on each
    side, against that component alone (other lesions in the window are left out of both sums)::

        Dice_k = 1 - (2 sum_{i in W_k} p_i y_i [i in k] + s_nr) / (sum_{i in W_k} p_i + sum_{i in k} y_i + s_dr)

    and the Dice term is the mean of ``Dice_k`` over every lesion of the batch.

    Lung-field false positives (``outside_weight``): with a ``lung_mask``, the (focal) BCE of pixels outside the
    lung fields is multiplied by ``outside_weight``. Synthetic lesions never lie there, so these pixels are true
    negatives; up-weighting them costs firing on the image edge, the mediastinum and the lung outline explicitly. The
    mask is only used by the loss: inference needs no lung mask.

    Args:
        bce_weight: weight ``>= 0`` of the BCE term.
        dice_weight: weight ``>= 0`` of the Dice term.
        mask_threshold: binarise the target at this value (None: keep it soft).
        focal_gamma: focusing parameter ``gamma >= 0`` (0: plain BCE).
        pos_weight: weight ``> 0`` of lesion pixels in the (focal) BCE.
        dice_mode: ``"image"`` (one Dice per image with a lesion) or ``"lesion"`` (one Dice per connected lesion).
        outside_weight: weight ``> 0`` of the (focal) BCE outside the lung fields (used when ``forward`` gets a
            ``lung_mask``).
        smooth_nr: Dice numerator smoothing.
        smooth_dr: Dice denominator smoothing.
        reduction: ``"mean"``, ``"sum"`` (sums over images of both terms) or ``"none"``: a ``(B,)``
            tensor ``bce_weight * BCE_b + dice_weight * Dice_b`` with Dice taken as 0 on empty masks (per-lesion
            Dice: the mean over the image's lesions).

    Shapes: ``logits``, ``target`` and the optional ``lung_mask`` ``(B, 1, H, W)``.

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
        dice_mode: str = "image",
        outside_weight: float = 1.0,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if bce_weight < 0 or dice_weight < 0 or focal_gamma < 0 or pos_weight <= 0 or outside_weight <= 0:
            raise ValueError(
                f"need bce_weight, dice_weight, focal_gamma >= 0 and pos_weight, outside_weight > 0, got "
                f"bce_weight={bce_weight}, dice_weight={dice_weight}, focal_gamma={focal_gamma}, "
                f"pos_weight={pos_weight}, outside_weight={outside_weight}"
            )
        if dice_mode not in ("image", "lesion"):
            raise ValueError(f"dice_mode must be 'image' or 'lesion', got {dice_mode!r}")
        self.dice_mode = dice_mode
        self.outside_weight = float(outside_weight)
        self.smooth_nr, self.smooth_dr = float(smooth_nr), float(smooth_dr)
        self.focal_gamma = float(focal_gamma)
        self.pos_weight = float(pos_weight)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.mask_threshold = mask_threshold
        self.dice = DiceLoss(sigmoid=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction="none")

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, lung_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the loss (see the class docstring for the formula and shapes)."""
        if logits.ndim != 4 or logits.shape[1] != 1 or logits.shape != target.shape:
            raise ValueError(
                f"logits and target must both be (B, 1, H, W) of one shape, got {tuple(logits.shape)} and "
                f"{tuple(target.shape)}"
            )
        if lung_mask is not None and lung_mask.shape != logits.shape:
            raise ValueError(f"lung_mask {tuple(lung_mask.shape)} must match logits {tuple(logits.shape)}")
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
        if lung_mask is not None and self.outside_weight != 1.0:
            outside = (lung_mask.to(logits.dtype) <= 0.5).to(logits.dtype)
            bce = bce * (1.0 + (self.outside_weight - 1.0) * outside)
        bce = bce.flatten(1).mean(1)
        has_lesion = target.flatten(1).sum(1) > 0
        if self.dice_weight <= 0:
            dice, counts = torch.zeros_like(bce), has_lesion.to(bce.dtype)
        elif self.dice_mode == "lesion":
            dice, counts = self._lesion_dice(logits, target)
        else:
            dice = torch.where(has_lesion, self.dice(logits, target).reshape(-1), torch.zeros_like(bce))
            counts = has_lesion.to(bce.dtype)
        if self.reduction == LossReduction.NONE.value:
            return self.bce_weight * bce + self.dice_weight * dice / counts.clamp_min(1)
        if self.reduction == LossReduction.SUM.value:
            return self.bce_weight * bce.sum() + self.dice_weight * (dice / counts.clamp_min(1)).sum()
        return self.bce_weight * bce.mean() + self.dice_weight * dice.sum() / counts.sum().clamp_min(1)

    def _lesion_dice(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: the sum of per-lesion Dice losses ``(B,)`` and the number of lesions ``(B,)``."""
        from scipy import ndimage

        prob = torch.sigmoid(logits)
        binary = (target > 0.5).detach().cpu().numpy()
        totals, counts = [], []
        for b in range(logits.shape[0]):
            labels, count = ndimage.label(binary[b, 0], structure=np.ones((3, 3), dtype=bool))
            total = prob.new_zeros(())
            for k, box in enumerate(ndimage.find_objects(labels), start=1):
                window = _grown(box, labels.shape)
                own = torch.as_tensor(labels[window] == k, device=logits.device, dtype=prob.dtype)
                p, y = prob[b, 0][window], target[b, 0][window] * own
                total = total + 1.0 - (2.0 * (p * y).sum() + self.smooth_nr) / (p.sum() + y.sum() + self.smooth_dr)
            totals.append(total)
            counts.append(count)
        return torch.stack(totals), torch.as_tensor(counts, device=logits.device, dtype=prob.dtype)


def _grown(box: tuple[slice, slice], shape: tuple[int, int]) -> tuple[slice, slice]:
    """``box`` grown by half its size plus 2 px on each side, clipped to ``shape``."""
    out = []
    for piece, size in zip(box, shape):
        margin = (piece.stop - piece.start) // 2 + 2
        out.append(slice(max(0, piece.start - margin), min(size, piece.stop + margin)))
    return tuple(out)
