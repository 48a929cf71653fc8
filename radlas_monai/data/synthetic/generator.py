"""One synthetic chest radiograph with labelled findings: :func:`render_radiograph`.

A sample is drawn in four independent random streams spawned from its seed: anatomy, which
findings, how the findings look, and exposure / noise. Because the anatomy and the noise do not
depend on the findings, ``render_radiograph(seed, findings=[])`` and
``render_radiograph(seed, findings=["Nodule"])`` show the *same* patient, without and with the
nodule: a matched healthy / diseased pair (cardiomegaly changes the heart, so also the lungs
around it).

Example::

    from radlas_monai.data.synthetic import render_radiograph

    sample = render_radiograph(seed=7, image_size=256)
    sample.image            # float32 (256, 256) in [0, 1], MONOCHROME2
    sample.label            # multi-hot over SYNTHETIC_FINDINGS
    [(f.name, f.box) for f in sample.findings]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from radlas_monai.data.synthetic.anatomy import ChestLayers, enlarge_heart, render_chest, sample_chest_anatomy
from radlas_monai.data.synthetic.exposure import expose, sample_exposure
from radlas_monai.data.synthetic.findings import Finding, cardiomegaly, cardiothoracic_ratio
from radlas_monai.data.synthetic.parenchyma import render_consolidation, render_mass, render_nodule
from radlas_monai.data.synthetic.pleura import render_effusion, render_pneumothorax
from radlas_monai.data.vocabulary import SYNTHETIC_FINDINGS, harmonize_finding, multi_hot

__all__ = [
    "FIELD_OF_VIEW_MM",
    "DEFAULT_NORMAL_PROB",
    "FINDING_RENDERERS",
    "SyntheticRadiograph",
    "render_radiograph",
    "draw_findings",
]

logger = logging.getLogger(__name__)

#: Width and height of the imaged field in mm; the pixel spacing is ``FIELD_OF_VIEW_MM / image_size``.
FIELD_OF_VIEW_MM = 350.0
#: Default probability that a randomly drawn image has no finding.
DEFAULT_NORMAL_PROB = 0.35
#: Smallest supported image side: below it the anatomy (ribs, vessels, small nodules) cannot be drawn.
MIN_IMAGE_SIZE = 64

#: Renderers of the findings that edit the chest layers, in the order they are applied; each takes
#: ``(layers, rng, occupied)`` and returns a :class:`Finding`. Cardiomegaly is not here: it changes
#: the anatomy before the chest is rendered.
FINDING_RENDERERS: dict[str, Callable[..., Finding]] = {
    "Pneumothorax": render_pneumothorax,
    "Effusion": render_effusion,
    "Consolidation": render_consolidation,
    "Mass": render_mass,
    "Nodule": render_nodule,
}
#: Relative frequency of each finding in a random draw.
_FINDING_WEIGHTS: dict[str, float] = {
    "Nodule": 0.24,
    "Mass": 0.12,
    "Consolidation": 0.18,
    "Effusion": 0.17,
    "Pneumothorax": 0.13,
    "Cardiomegaly": 0.16,
}


@dataclass
class SyntheticRadiograph:
    """A rendered synthetic PA chest radiograph and its annotations.

    Attributes:
        image: float32 H x W in [0, 1], MONOCHROME2 (0 = air, 1 = bone), rows = y, columns = x.
        lung_mask: uint8 H x W, 1 inside the visible lung fields (not behind heart or diaphragm).
        findings: the rendered findings, each with its own mask, box, centre and radius.
        label: multi-hot list over :data:`~radlas_monai.data.vocabulary.SYNTHETIC_FINDINGS`.
        seed: the seed the sample was rendered from.
        spacing: ``(row_mm, col_mm)`` pixel spacing.
        cardiothoracic_ratio: heart width over internal thoracic width, measured on the masks.
        class_names: the classes of ``label``.
    """

    image: np.ndarray
    lung_mask: np.ndarray
    findings: list[Finding]
    label: list[int]
    seed: int
    spacing: tuple[float, float]
    cardiothoracic_ratio: float
    class_names: tuple[str, ...] = field(default=SYNTHETIC_FINDINGS)

    @property
    def finding_names(self) -> list[str]:
        """Names of the findings, one per finding (a name repeats for repeated findings)."""
        return [f.name for f in self.findings]

    @property
    def lesion_mask(self) -> np.ndarray:
        """uint8 H x W union of all finding masks (all zero for a normal image)."""
        union = np.zeros(self.image.shape, dtype=np.uint8)
        for finding in self.findings:
            union |= finding.mask
        return union

    @property
    def is_normal(self) -> bool:
        return not self.findings


def _canonical_findings(findings: Sequence[str]) -> list[str]:
    if isinstance(findings, str):
        raise TypeError(f"findings must be a sequence of names, not the string {findings!r}")
    names = []
    for name in findings:
        try:
            canonical = harmonize_finding(str(name))
        except KeyError:
            canonical = str(name)
        if canonical not in SYNTHETIC_FINDINGS:
            raise ValueError(f"cannot render finding {name!r}; synthetic findings are {list(SYNTHETIC_FINDINGS)}")
        names.append(canonical)
    return names


def draw_findings(rng: np.random.Generator, normal_prob: float = DEFAULT_NORMAL_PROB) -> list[str]:
    """Draw which findings an image shows: none with ``normal_prob``, else 1 to 3 distinct ones.

    Args:
        rng: the only source of randomness.
        normal_prob: probability of a normal image, in [0, 1].

    Returns:
        Finding names from :data:`~radlas_monai.data.vocabulary.SYNTHETIC_FINDINGS`.

    Raises:
        ValueError: ``normal_prob`` outside [0, 1].
    """
    if not 0.0 <= float(normal_prob) <= 1.0:
        raise ValueError(f"normal_prob must be in [0, 1], got {normal_prob}")
    if rng.random() < normal_prob:
        return []
    count = 1 + int(rng.random() < 0.35) + int(rng.random() < 0.12)
    names = list(_FINDING_WEIGHTS)
    weights = np.array([_FINDING_WEIGHTS[n] for n in names])
    return [str(n) for n in rng.choice(names, size=count, replace=False, p=weights / weights.sum())]


def _apply_findings(layers: ChestLayers, names: list[str], rng: np.random.Generator) -> list[Finding]:
    found: list[Finding] = []
    occupied = np.zeros(layers.lung_mask.shape, dtype=bool)
    for name, renderer in FINDING_RENDERERS.items():
        for _ in range(names.count(name)):
            finding = renderer(layers, rng, occupied)
            occupied |= finding.mask.astype(bool)
            found.append(finding)
    return found


def render_radiograph(
    seed: int,
    image_size: int = 256,
    findings: Sequence[str] | None = None,
    normal_prob: float = DEFAULT_NORMAL_PROB,
) -> SyntheticRadiograph:
    """Render one synthetic PA chest radiograph, deterministically from ``seed``.

    Args:
        seed: non-negative integer; the same seed (and arguments) gives the same image, bit for bit.
        image_size: side of the square image in pixels (>= 64); anatomy and findings scale with it,
            the field of view stays :data:`FIELD_OF_VIEW_MM`.
        findings: names to render (repeats render several, e.g. two nodules; ``[]`` = a normal
            image); ``None`` draws them at random (see :func:`draw_findings`).
        normal_prob: probability of a normal image when ``findings`` is ``None``.

    Returns:
        The :class:`SyntheticRadiograph`.

    Raises:
        ValueError: a negative seed, a too small image, an unknown finding or a bad ``normal_prob``.
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {image_size}")
    size = int(image_size)
    anatomy_rng, draw_rng, finding_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)
    )
    names = draw_findings(draw_rng, normal_prob) if findings is None else _canonical_findings(findings)
    anatomy = sample_chest_anatomy(anatomy_rng)
    if "Cardiomegaly" in names:
        anatomy = enlarge_heart(anatomy, float(finding_rng.uniform(0.55, 0.68)))
    layers = render_chest(anatomy, size, anatomy_rng)
    exposure = sample_exposure(anatomy_rng, layers)  # before the findings: they must not change it
    rendered = _apply_findings(layers, names, finding_rng)
    if "Cardiomegaly" in names:
        rendered.append(cardiomegaly(layers))
    image = expose(layers, exposure, noise_rng)
    ctr = cardiothoracic_ratio(layers.geometry.heart_mask(), layers.lung_mask)
    spacing = FIELD_OF_VIEW_MM / size
    return SyntheticRadiograph(
        image=image,
        lung_mask=layers.lung_mask.astype(np.uint8),
        findings=rendered,
        label=multi_hot([f.name for f in rendered], SYNTHETIC_FINDINGS),
        seed=int(seed),
        spacing=(spacing, spacing),
        cardiothoracic_ratio=ctr,
    )
