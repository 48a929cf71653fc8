"""The combined RadLAS pretraining objective (Task I + Task II)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn.modules.loss import _Loss

from radlas_monai.losses.contrastive import LesionDiscriminationLoss
from radlas_monai.losses.grounding import GroundingLoss
from radlas_monai.losses.reconstruction import LesionWeightedReconstructionLoss
from radlas_monai.networks.pooling import token_lesion_weights

if TYPE_CHECKING:
    from radlas_monai.networks.radlas import RadLASOutput

__all__ = ["RadLASLoss"]


class RadLASLoss(_Loss):
    """Weighted sum of the three RadLAS losses, returning every term for logging.

    ::

        loss = recon_weight       * LesionWeightedReconstructionLoss(restored, healthy, mask)
             + grounding_weight   * GroundingLoss(grounding_logits, mask)
             + contrastive_weight * LesionDiscriminationLoss(global, lesion, normal embeddings, has_lesion,
                                                             token_embeddings, token weights of mask)

    ``has_lesion`` is ``sum(mask) >= min_lesion_pixels`` per image; the token weights of the
    contrastive term are the synthetic mask average-pooled onto the token grid
    (:func:`~radlas_monai.networks.pooling.token_lesion_weights`), independent of what the network
    pooled. A term with weight 0 is not computed (reported as 0).

    Args:
        recon_weight, grounding_weight, contrastive_weight: term weights (``>= 0``).
        temperature: contrastive temperature.
        token_weight: weight of the token-level contrastive term.
        lesion_weight: pixel up-weighting of the lesion in the reconstruction loss.
        recon_beta: smooth-L1 transition of the reconstruction loss (0: plain L1), see
            :class:`LesionWeightedReconstructionLoss`.
        ssim_weight: SSIM weight in the reconstruction loss.
        bce_weight, dice_weight, focal_gamma, pos_weight, dice_mode, outside_weight: grounding loss terms (see
            :class:`GroundingLoss`).
        min_lesion_pixels: mask mass (sum of mask values) from which an image counts as lesioned.

    :meth:`forward` returns a dict of 0-d tensors: ``loss`` (the total, to back-propagate),
    ``loss_reconstruction``, ``loss_grounding``, ``loss_contrastive`` (unweighted terms) and
    ``lesion_fraction`` (share of images with lesions, for monitoring).

    Raises:
        ValueError: for negative weights, or ``grounding_weight > 0`` with an output without grounding
            logits, or ill-shaped inputs.
    """

    def __init__(
        self,
        recon_weight: float = 1.0,
        grounding_weight: float = 1.0,
        contrastive_weight: float = 0.1,
        temperature: float = 0.1,
        token_weight: float = 0.5,
        lesion_weight: float = 5.0,
        recon_beta: float = 0.05,
        ssim_weight: float = 0.0,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        focal_gamma: float = 0.0,
        pos_weight: float = 1.0,
        dice_mode: str = "image",
        outside_weight: float = 1.0,
        min_lesion_pixels: float = 1.0,
    ) -> None:
        super().__init__()
        weights = {
            "recon_weight": recon_weight,
            "grounding_weight": grounding_weight,
            "contrastive_weight": contrastive_weight,
            "min_lesion_pixels": min_lesion_pixels,
        }
        if any(v < 0 for v in weights.values()):
            raise ValueError(f"loss weights must be >= 0, got {weights}")
        self.recon_weight = float(recon_weight)
        self.grounding_weight = float(grounding_weight)
        self.contrastive_weight = float(contrastive_weight)
        self.min_lesion_pixels = float(min_lesion_pixels)
        self.reconstruction = LesionWeightedReconstructionLoss(
            lesion_weight=lesion_weight, beta=recon_beta, ssim_weight=ssim_weight
        )
        self.grounding = GroundingLoss(
            bce_weight=bce_weight,
            dice_weight=dice_weight,
            focal_gamma=focal_gamma,
            pos_weight=pos_weight,
            dice_mode=dice_mode,
            outside_weight=outside_weight,
        )
        self.contrastive = LesionDiscriminationLoss(temperature=temperature, token_weight=token_weight)

    @property
    def uses_lung_mask(self) -> bool:
        """Whether :meth:`forward` uses a ``lung_mask`` (the grounding loss's ``outside_weight`` is not 1); the
        pretraining step hands the lung masks over only then."""
        return self.grounding_weight > 0 and self.grounding.outside_weight != 1.0

    def forward(
        self,
        output: RadLASOutput,
        healthy: torch.Tensor,
        lesion_mask: torch.Tensor,
        token_mask: torch.Tensor | None = None,
        lung_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute all terms for one batch.

        Args:
            output: the network's :class:`~radlas_monai.networks.radlas.RadLASOutput`.
            healthy: healthy target images ``(B, 1, H, W)`` (the restored image's grid: crops when the network's
                convolutional path ran on crops).
            lesion_mask: synthetic lesion masks ``(B, 1, H, W)`` in ``[0, 1]``, on the same grid.
            token_mask: the whole images' synthetic masks ``(B, 1, H', W')`` for the contrastive term and
                ``has_lesion`` when ``lesion_mask`` holds crops (default: ``lesion_mask``).
            lung_mask: lung fields ``(B, 1, H, W)`` on ``lesion_mask``'s grid, for the grounding loss's
                ``outside_weight`` (optional).

        Returns:
            dict with ``loss``, ``loss_reconstruction``, ``loss_grounding``, ``loss_contrastive`` and
            ``lesion_fraction``.
        """
        restored = output.restored
        if lesion_mask.shape != restored.shape or healthy.shape != restored.shape:
            raise ValueError(
                f"healthy {tuple(healthy.shape)} and lesion_mask {tuple(lesion_mask.shape)} must match restored "
                f"{tuple(restored.shape)}"
            )
        mask = lesion_mask.to(torch.float32).clamp(0.0, 1.0)
        whole = mask if token_mask is None else token_mask.to(torch.float32).clamp(0.0, 1.0)
        if whole.shape[0] != mask.shape[0]:
            raise ValueError(f"token_mask {tuple(whole.shape)} and lesion_mask {tuple(mask.shape)} differ in batch")
        has_lesion = whole.flatten(1).sum(1) >= self.min_lesion_pixels
        zero = restored.sum() * 0.0
        terms = {"loss_reconstruction": zero, "loss_grounding": zero, "loss_contrastive": zero}
        if self.recon_weight > 0:
            terms["loss_reconstruction"] = self.reconstruction(restored.float(), healthy.float(), mask)
        if self.grounding_weight > 0:
            if output.grounding_logits is None:
                raise ValueError(
                    "grounding_weight > 0 but the network has no grounding head (grounding_logits is None)"
                )
            terms["loss_grounding"] = self.grounding(output.grounding_logits.float(), mask, lung_mask)
        if self.contrastive_weight > 0:
            token_weights = token_lesion_weights(whole, output.grid_size) if self.contrastive.token_weight > 0 else None
            terms["loss_contrastive"] = self.contrastive(
                output.global_embedding,
                output.lesion_embedding,
                output.normal_embedding,
                has_lesion,
                output.token_embeddings,
                token_weights,
            )
        total = (
            self.recon_weight * terms["loss_reconstruction"]
            + self.grounding_weight * terms["loss_grounding"]
            + self.contrastive_weight * terms["loss_contrastive"]
        )
        return {"loss": total, **terms, "lesion_fraction": has_lesion.float().mean()}
