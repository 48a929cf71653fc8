"""``radlas_lesion``: lesion mask (or 8-bit heat map) at the input's geometry, with scored boxes as JSON."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monailabel.interfaces.tasks.infer_v2 import InferType

from radlas_monai.engines.inference import resize_to
from radlas_monai.interpret.localize import localize
from radlas_monai.interpret.threshold import normalize_map
from radlas_monai.label.decode import SafeRadiographDecoder
from radlas_monai.label.infer_base import RadLASInferTask
from radlas_monai.label.models import BundleSpec, build_lesion_network
from radlas_monai.label.params import LESION_PARAMS

__all__ = ["RadLASLesionInfer", "DEFAULT_THRESHOLD", "DEFAULT_PERCENTILE"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_PERCENTILE = 99.0


class RadLASLesionInfer(RadLASInferTask):
    """Lesion localization: ``RadLASLesionMap`` -> heat map at input geometry -> mask, boxes, scores.

    The map is computed at the bundle's ``image_size`` (``area`` down-sampling, as the bundle's
    preprocessing), resized bilinearly to the input's ``(H, W)`` and localized there with
    :func:`radlas_monai.interpret.localize.localize`, so boxes are in input pixels and the mask has the
    input's shape. ``min_area`` is given on the model grid and scaled to the input.

    Returned image (``label`` parameter): ``"mask"`` (uint8 {0, 1}, label ``lesion`` = 1) or ``"heatmap"``
    (uint8 0..255, the min-max normalised map), as PNG (default) or NIfTI (``result_extension``).

    Returned JSON: ``boxes`` (``[x0, y0, x1, y1]``, x1/y1 exclusive), ``box_scores`` (max heat in the box's
    component), ``box_areas``, ``peaks``, ``image_score`` (map maximum), ``heatmap_range`` (raw min, max),
    ``method``, ``value``, ``mask_area``, ``image_shape`` ``[H, W]``, ``model_input_size``.

    Args:
        spec: the lesion_localization bundle (:func:`~radlas_monai.label.models.lesion_bundle_spec`).
        decoder: the app's safe decoder.
        device: see :class:`~radlas_monai.label.infer_base.RadLASInferTask`.
    """

    def __init__(self, spec: BundleSpec, decoder: SafeRadiographDecoder, device: str | None = None) -> None:
        method = spec.values.get("threshold_method", "otsu")
        defaults = {"method": method if method in ("otsu", "fixed", "percentile") else "otsu", "label": "mask"}
        super().__init__(
            spec=spec,
            build=build_lesion_network,
            decoder=decoder,
            allowed=LESION_PARAMS,
            infer_type=InferType.SEGMENTATION,
            labels={"lesion": 1},
            description="RadLAS lesion localization: grounded lesion map -> mask, scored boxes, image score",
            device=device,
            defaults=defaults,
        )

    def forward(self, network: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return network(batch)[0].float().cpu()  # (1, S, S) in [0, 1]

    def _threshold(self, data: dict[str, Any]) -> tuple[str, float | None]:
        method = data.get("method", self._config.get("method", "otsu"))
        if method == "fixed":
            return method, float(data.get("threshold", self.spec.values.get("threshold_value") or DEFAULT_THRESHOLD))
        if method == "percentile":
            return method, float(data.get("percentile", DEFAULT_PERCENTILE))
        return method, None

    def localize(self, data: dict[str, Any]) -> tuple[np.ndarray, Any]:
        """Heat map at input geometry ``(H, W)`` float32 and its :class:`~radlas_monai.interpret.Localization`."""
        height, width = data["original_shape"]
        heatmap = resize_to(data[self.output_label_key], (height, width))[0].numpy().astype(np.float32)
        size = self.spec.image_size
        min_area = int(data.get("min_area", self.spec.values.get("min_area", 16)))
        scaled_area = max(1, round(min_area * height * width / float(size * size)))
        method, value = self._threshold(data)
        result = localize(
            heatmap,
            method=method,
            value=value,
            min_area=scaled_area,
            max_boxes=int(data.get("max_boxes", self.spec.values.get("max_boxes", 10))),
            min_distance=max(1, round(8 * max(height, width) / size)),
        )
        return heatmap, result

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[str, dict]:
        """Write the mask or heat map image (temporary file; MONAI Label deletes it) and build the JSON."""
        from radlas_monai.data.writers import write_nifti, write_png

        heatmap, result = self.localize(data)
        kind = data.get("label", self._config.get("label", "mask"))
        image = result.mask.astype(np.uint8) if kind == "mask" else np.round(normalize_map(heatmap) * 255)
        image = image.astype(np.uint8)
        suffix = data.get("result_extension", ".png")
        handle, name = tempfile.mkstemp(prefix=f"radlas_{kind}_", suffix=suffix)
        os.close(handle)
        path = Path(name)
        if suffix == ".png":
            write_png(image, path)
        else:
            write_nifti(image, path)
        summary = result.to_json(include_mask=False)
        detections = summary.pop("boxes")
        summary.update(
            boxes=[d["box"] for d in detections],
            box_scores=[d["score"] for d in detections],
            box_areas=[d["area"] for d in detections],
            image_shape=[int(s) for s in heatmap.shape],
            model_input_size=int(self.spec.image_size),
            label=kind,
            source_format=data.get("source_format"),
        )
        return str(path), summary
