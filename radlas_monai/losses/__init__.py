"""RadLAS losses: Task I (lesion-weighted reconstruction, grounding) and Task II (lesion discrimination)."""

from __future__ import annotations

from radlas_monai.losses.contrastive import LesionDiscriminationLoss
from radlas_monai.losses.grounding import GroundingLoss
from radlas_monai.losses.radlas_loss import RadLASLoss
from radlas_monai.losses.reconstruction import LesionWeightedReconstructionLoss

__all__ = ["GroundingLoss", "LesionDiscriminationLoss", "LesionWeightedReconstructionLoss", "RadLASLoss"]
