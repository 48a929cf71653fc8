"""Embedded synthetic chest radiographs: the default data of every bundle, no download needed.

Procedural posterior-anterior chest radiographs rendered as physical projections (soft tissue,
air-filled lungs, heart and diaphragm silhouettes, ribs, clavicles, spine, branching vessels;
varied anatomy, exposure and quantum noise per seed), MONOCHROME2 in [0, 1], with lung masks and
labelled findings (:data:`~radlas_monai.data.vocabulary.SYNTHETIC_FINDINGS`: Nodule, Mass,
Consolidation, Effusion, Pneumothorax, Cardiomegaly), each with its own mask and box. The findings
come from a generator independent of the pretraining lesion synthesizer.

Modules: :mod:`.anatomy` (normal chest and lung mask), :mod:`.soft_tissue`, :mod:`.skeleton`, :mod:`.vessels`,
:mod:`.exposure` (attenuation to grey values and noise), :mod:`.findings` (the ``Finding`` record,
cardiomegaly, cardiothoracic ratio), :mod:`.parenchyma` (nodule, mass, consolidation), :mod:`.pleura`
(effusion, pneumothorax), :mod:`.generator` (one sample), :mod:`.dataset` (files and datalist).

Example::

    from radlas_monai.data.synthetic import ensure_synthetic_dataset, render_radiograph

    sample = render_radiograph(seed=0, image_size=256, findings=["Nodule"])
    datalist_json = ensure_synthetic_dataset(num_images=200, image_size=256, seed=0)
"""

from __future__ import annotations

from radlas_monai.data.synthetic.dataset import (
    DATALIST_NAME,
    GENERATOR_VERSION,
    default_dataset_dir,
    ensure_synthetic_dataset,
    generate_dataset,
    image_seed,
)
from radlas_monai.data.synthetic.findings import Finding, cardiothoracic_ratio
from radlas_monai.data.synthetic.generator import (
    DEFAULT_NORMAL_PROB,
    FIELD_OF_VIEW_MM,
    SyntheticRadiograph,
    draw_findings,
    render_radiograph,
)

__all__ = [
    "DATALIST_NAME",
    "DEFAULT_NORMAL_PROB",
    "FIELD_OF_VIEW_MM",
    "GENERATOR_VERSION",
    "Finding",
    "SyntheticRadiograph",
    "cardiothoracic_ratio",
    "default_dataset_dir",
    "draw_findings",
    "ensure_synthetic_dataset",
    "generate_dataset",
    "image_seed",
    "render_radiograph",
]
