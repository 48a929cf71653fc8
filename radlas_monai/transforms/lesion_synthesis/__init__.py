"""Lesion synthesis for RadLAS Task I: synthetic lesion-like corruptions written into radiographs.

The network learns to restore the healthy radiograph from the corrupted one, and the soft lesion mask supervises its
grounding head. :class:`RandLesionSynthesis` works on single images or whole batches (e.g. on the GPU inside the
training iteration); :class:`RandLesionSynthesisd` is its dictionary version for MONAI pipelines.
"""

from __future__ import annotations

from radlas_monai.transforms.lesion_synthesis.array import LesionSynthesisResult, RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis.dictionary import RandLesionSynthesisd
from radlas_monai.transforms.lesion_synthesis.families import DEFAULT_FAMILY_PROBS, LESION_FAMILIES

__all__ = [
    "LESION_FAMILIES",
    "DEFAULT_FAMILY_PROBS",
    "LesionSynthesisResult",
    "RandLesionSynthesis",
    "RandLesionSynthesisd",
]
