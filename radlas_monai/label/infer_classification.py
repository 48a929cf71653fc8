"""``radlas_classification``: a probability per class name from the fine-tuned RadLAS classifier (JSON only)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from monailabel.interfaces.tasks.infer_v2 import InferType

from radlas_monai.label.decode import SafeRadiographDecoder
from radlas_monai.label.infer_base import RadLASInferTask
from radlas_monai.label.models import BundleSpec, build_classifier
from radlas_monai.label.params import CLASSIFICATION_PARAMS

__all__ = ["RadLASClassificationInfer"]

logger = logging.getLogger(__name__)


class RadLASClassificationInfer(RadLASInferTask):
    """Diagnosis from grounded evidence: ``RadLASClassifier`` -> per-class probabilities.

    Returned JSON: ``scores`` (``{class name: probability}``, sigmoid per class for multi-label
    classifiers, softmax otherwise), ``class_names`` (logit order), ``multi_label``, ``prediction`` (the
    highest-scoring class), ``image_shape`` ``[H, W]``. No image is returned.

    Args:
        spec: the finetune_classification bundle (:func:`~radlas_monai.label.models.classification_bundle_spec`).
        decoder: the app's safe decoder.
        device: see :class:`~radlas_monai.label.infer_base.RadLASInferTask`.
    """

    def __init__(self, spec: BundleSpec, decoder: SafeRadiographDecoder, device: str | None = None) -> None:
        super().__init__(
            spec=spec,
            build=build_classifier,
            decoder=decoder,
            allowed=CLASSIFICATION_PARAMS,
            infer_type=InferType.CLASSIFICATION,
            labels=list(spec.values["class_names"]),
            description="RadLAS diagnosis from grounded evidence: a probability per finding",
            device=device,
        )

    def forward(self, network: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        output = network(batch)
        return output.probabilities()[0].float().cpu()  # (K,)

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[None, dict]:
        """JSON only: ``scores`` per class name."""
        names = [str(n) for n in self.spec.values["class_names"]]
        probabilities = [float(p) for p in data[self.output_label_key].tolist()]
        if len(probabilities) != len(names):
            raise ValueError(f"classifier returned {len(probabilities)} scores for {len(names)} classes {names}")
        scores = dict(zip(names, probabilities))
        return None, {
            "scores": scores,
            "class_names": names,
            "multi_label": bool(self.spec.values["multi_label"]),
            "prediction": max(scores, key=scores.get),
            "image_shape": [int(s) for s in data["original_shape"]],
            "source_format": data.get("source_format"),
        }
