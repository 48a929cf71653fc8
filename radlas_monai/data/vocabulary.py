"""One pathology vocabulary for the whole project.

Finding names follow torchxrayvision's spellings, the de-facto standard across chest X-ray
datasets (``Effusion``, not ``Pleural Effusion``; ``Pleural_Thickening`` with an underscore).
Every dataset adapter maps its own label names onto these with :func:`harmonize_finding`, so that a
model fine-tuned on one dataset reads the same class names on another.

``NO_FINDING`` marks an image with none of the findings; it is not a class of its own in multi-label
training (an all-zero label vector means normal).
"""

from __future__ import annotations

__all__ = [
    "PATHOLOGIES",
    "CHESTXRAY14_FINDINGS",
    "SYNTHETIC_FINDINGS",
    "NO_FINDING",
    "harmonize_finding",
    "multi_hot",
]

NO_FINDING = "No Finding"

#: The project vocabulary (torchxrayvision ``default_pathologies`` plus findings of VinDr-CXR).
PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
    "Aortic Enlargement",
    "Calcification",
    "Interstitial Lung Disease",
    "Support Devices",
    "Other Lesion",
)

#: The 14 findings of NIH ChestX-ray14, in the dataset's own order.
CHESTXRAY14_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

#: The findings that the embedded synthetic radiographs are rendered with.
SYNTHETIC_FINDINGS: tuple[str, ...] = ("Nodule", "Mass", "Consolidation", "Effusion", "Pneumothorax", "Cardiomegaly")

_SYNONYMS: dict[str, str] = {
    "pleural effusion": "Effusion",
    "effusion": "Effusion",
    "pleural thickening": "Pleural_Thickening",
    "pleural_thickening": "Pleural_Thickening",
    "pleural other": "Pleural_Thickening",
    "aortic enlargement": "Aortic Enlargement",
    "ild": "Interstitial Lung Disease",
    "interstitial lung disease": "Interstitial Lung Disease",
    "pulmonary fibrosis": "Fibrosis",
    "other lesion": "Other Lesion",
    "lung lesion": "Lung Lesion",
    "lung opacity": "Lung Opacity",
    "enlarged cardiomediastinum": "Enlarged Cardiomediastinum",
    "support devices": "Support Devices",
    "infiltrate": "Infiltration",  # NIH BBox_List_2017.csv spelling
    "rib fracture": "Fracture",  # VinDr-CXR local labels
    "clavicle fracture": "Fracture",
    "no finding": NO_FINDING,
    "no_finding": NO_FINDING,
    "normal": NO_FINDING,
}
_CANONICAL = {name.lower(): name for name in (*PATHOLOGIES, NO_FINDING)}


def harmonize_finding(name: str) -> str:
    """Map a dataset's label name onto the project vocabulary.

    Args:
        name: a finding name as spelled by some dataset (case and surrounding spaces ignored).

    Returns:
        The canonical spelling from :data:`PATHOLOGIES`, or :data:`NO_FINDING`.

    Raises:
        KeyError: when the name has no mapping; the message lists the vocabulary.
    """
    key = " ".join(name.strip().lower().split())
    if key in _CANONICAL:
        return _CANONICAL[key]
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise KeyError(f"unknown finding {name!r}; the vocabulary is {list(PATHOLOGIES)} and {NO_FINDING!r}")


def multi_hot(findings: list[str] | tuple[str, ...], class_names: list[str] | tuple[str, ...]) -> list[int]:
    """Encode a list of (harmonized) findings as a multi-hot vector over ``class_names``.

    Args:
        findings: finding names present in the image; :data:`NO_FINDING` and names outside
            ``class_names`` are ignored.
        class_names: the classes of the vector, in order.

    Returns:
        A list of 0/1 integers, one per class.
    """
    present = {harmonize_finding(f) for f in findings}
    return [int(name in present) for name in class_names]
