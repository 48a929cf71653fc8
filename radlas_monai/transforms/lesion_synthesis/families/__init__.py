"""Lesion families of the pretraining synthesizer, one module per family.

``LESION_FAMILIES`` fixes the names and their order; a family's index in the ``family`` map returned by
:class:`~radlas_monai.transforms.lesion_synthesis.array.RandLesionSynthesis` is its position here plus one
(0 = untouched pixel).
"""

from __future__ import annotations

from radlas_monai.transforms.lesion_synthesis.families.base import LesionFamily, LesionPatches
from radlas_monai.transforms.lesion_synthesis.families.effusion import EffusionFamily
from radlas_monai.transforms.lesion_synthesis.families.foreign import ForeignPatchFamily
from radlas_monai.transforms.lesion_synthesis.families.nodule import NoduleFamily
from radlas_monai.transforms.lesion_synthesis.families.opacity import AirspaceOpacityFamily
from radlas_monai.transforms.lesion_synthesis.families.pneumothorax import PneumothoraxFamily

__all__ = [
    "LESION_FAMILIES",
    "FAMILY_CLASSES",
    "DEFAULT_FAMILY_PROBS",
    "LesionFamily",
    "LesionPatches",
    "NoduleFamily",
    "AirspaceOpacityFamily",
    "ForeignPatchFamily",
    "EffusionFamily",
    "PneumothoraxFamily",
]

#: Family names, in the order of their index (1-based) in the ``family`` map.
LESION_FAMILIES: tuple[str, ...] = ("nodule", "airspace_opacity", "foreign_patch", "effusion", "pneumothorax")

#: The class implementing each family.
FAMILY_CLASSES: dict[str, type[LesionFamily]] = {
    "nodule": NoduleFamily,
    "airspace_opacity": AirspaceOpacityFamily,
    "foreign_patch": ForeignPatchFamily,
    "effusion": EffusionFamily,
    "pneumothorax": PneumothoraxFamily,
}

#: Default probability of each family per lesion: nodules dominate because real nodules are the first target.
DEFAULT_FAMILY_PROBS: dict[str, float] = {
    "nodule": 0.4,
    "airspace_opacity": 0.2,
    "foreign_patch": 0.2,
    "effusion": 0.1,
    "pneumothorax": 0.1,
}
