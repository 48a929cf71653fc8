"""Lesion families of the pretraining synthesizer, one module per family.

``LESION_FAMILIES`` fixes the names and their order; a family's index in the ``family`` map returned by
:class:`~radlas_monai.transforms.lesion_synthesis.array.RandLesionSynthesis` is its position here plus one
(0 = untouched pixel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
    "family_probabilities",
    "build_families",
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

#: Default probability of each family per lesion, chosen by the share of *positive pixels* each family contributes,
#: not by lesion count: an effusion covers ~20x the pixels of a nodule, so at equal counts border-hugging effusion and
#: pneumothorax dominate the grounding loss and the head learns the lung outline. Measured on the 47 normal JSRT
#: training-half radiographs (512 px, 0.7 mm; ``scripts/measure_lesion_synthesis.py``): mean mask mass per lesion
#: nodule 468 px, airspace opacity 2199, foreign patch 617, effusion 6294, pneumothorax 5000, so these probabilities
#: give an expected share of the lesion mask's mass of nodule 42 %, airspace opacity 21 %, foreign patch 22 %,
#: effusion 9 %, pneumothorax 7 % (the previous mix, 0.4 / 0.2 / 0.2 / 0.1 / 0.1, gives 10 / 23 / 7 / 33 / 27 %).
DEFAULT_FAMILY_PROBS: dict[str, float] = {
    "nodule": 0.65,
    "airspace_opacity": 0.07,
    "foreign_patch": 0.26,
    "effusion": 0.01,
    "pneumothorax": 0.01,
}


def family_probabilities(family_probs: Mapping[str, float] | Sequence[float] | None = None) -> np.ndarray:
    """Validated, normalised family probabilities in ``LESION_FAMILIES`` order.

    Args:
        family_probs: ``{name: p}`` (missing names get 0), a sequence in ``LESION_FAMILIES`` order, or None for
            :data:`DEFAULT_FAMILY_PROBS`.

    Returns:
        float64 probabilities summing to 1.

    Raises:
        ValueError: for unknown names, a wrong length, negative values or an all-zero vector.
    """
    if family_probs is None:
        family_probs = DEFAULT_FAMILY_PROBS
    if isinstance(family_probs, Mapping):
        unknown = sorted(set(family_probs) - set(LESION_FAMILIES))
        if unknown:
            raise ValueError(f"unknown lesion families {unknown} in family_probs; known: {list(LESION_FAMILIES)}")
        values = [float(family_probs.get(name, 0.0)) for name in LESION_FAMILIES]
    else:
        values = [float(p) for p in family_probs]
        if len(values) != len(LESION_FAMILIES):
            raise ValueError(f"family_probs needs {len(LESION_FAMILIES)} values {list(LESION_FAMILIES)}, got {values}")
    probs = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
        raise ValueError(f"family_probs must be finite, non-negative and not all zero, got {values}")
    return probs / probs.sum()


def build_families(family_kwargs: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[LesionFamily, ...]:
    """One instance of every family, in ``LESION_FAMILIES`` order.

    Args:
        family_kwargs: constructor arguments per family name.

    Returns:
        The families.

    Raises:
        ValueError: for unknown family names.
    """
    kwargs = dict(family_kwargs or {})
    unknown = sorted(set(kwargs) - set(LESION_FAMILIES))
    if unknown:
        raise ValueError(f"unknown lesion families {unknown} in family_kwargs; known: {list(LESION_FAMILIES)}")
    return tuple(FAMILY_CLASSES[name](**dict(kwargs.get(name) or {})) for name in LESION_FAMILIES)
