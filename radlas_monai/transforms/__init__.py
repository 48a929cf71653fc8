"""MONAI transforms for radiographs: lesion synthesis for RadLAS pretraining (Task I).

The radiograph loader and its intensity convention live in :mod:`radlas_monai.data` (``LoadRadiograph``).
"""

from __future__ import annotations

from radlas_monai.transforms.lesion_synthesis import (
    DEFAULT_FAMILY_PROBS,
    LESION_FAMILIES,
    LesionSynthesisResult,
    RandLesionSynthesis,
    RandLesionSynthesisd,
)

__all__ = [
    "DEFAULT_FAMILY_PROBS",
    "LESION_FAMILIES",
    "LesionSynthesisResult",
    "RandLesionSynthesis",
    "RandLesionSynthesisd",
]
