"""Inference with a RadLAS network: lesion maps (and restored images) written per input, in the input's geometry.

``SupervisedEvaluator(iteration_update=RadLASInferenceStep(...), val_handlers=[PredictionWriter(...)])`` runs it.
Output files are named by the input's non-identifying ``image_id`` (a hash of the file's bytes, see
:class:`radlas_monai.data.LoadRadiograph`), never by the input's file name or any DICOM identifier.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events

from radlas_monai.data.errors import RadiographReadError
from radlas_monai.engines.pretrain import autocast_context

__all__ = ["RadLASInferenceStep", "PredictionWriter", "resize_to"]

logger = logging.getLogger(__name__)


def resize_to(maps: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resize (C, h, w) maps back to an input's (H, W) (bilinear, no corner alignment).

    Args:
        maps: (C, h, w) tensor.
        shape: target (H, W).

    Returns:
        (C, H, W) tensor.
    """
    shape = tuple(int(s) for s in shape)
    if tuple(maps.shape[-2:]) == shape:
        return maps
    return F.interpolate(maps[None].float(), size=shape, mode="bilinear", align_corners=False)[0]


def _per_item(value: Any, size: int) -> list:
    """A collated string meta value (a list of ``size`` strings, or one string for a batch of one) per item."""
    if isinstance(value, (list, tuple)) and len(value) == size:
        return [str(v) for v in value]
    return [str(value) if value is not None else None] * size


class RadLASInferenceStep:
    """``iteration_update`` for ``monai.engines.SupervisedEvaluator``: lesion map and restored image per input.

    Args:
        amp: bf16 autocast for the forward pass.

    Returns (per call):
        ``{"image", "restored", "lesion_map"}`` (B, 1, h, w) at the network's size, and ``"meta"``: one dict per
        input with its ``image_id`` and ``filename_or_obj`` (the writer re-reads the input for its geometry).
    """

    def __init__(self, amp: bool = False) -> None:
        self.amp = amp

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        image = batchdata["image"]
        meta = dict(getattr(image, "meta", {}) or {})
        size = image.shape[0]
        device = torch.device(engine.state.device)
        pixels = (image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)).to(device).float()
        engine.network.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            output = engine.network(pixels)
        ids, paths = _per_item(meta.get("image_id"), size), _per_item(meta.get("filename_or_obj"), size)
        return {
            "image": pixels,
            "restored": output.restored.float(),
            "lesion_map": output.lesion_map.float(),
            "meta": [{"image_id": ids[i], "filename_or_obj": paths[i]} for i in range(size)],
        }


class PredictionWriter:
    """Ignite handler writing, per input, the lesion map and restored image (NIfTI) and an overlay PNG.

    Files in ``output_dir``, for each input with id ``<id>``:
    ``<id>_lesion_map.nii.gz`` (float32 in [0, 1], the input's rows x columns and spacing),
    ``<id>_restored.nii.gz`` (float32, same geometry; with ``write_restored``), ``<id>_overlay.png`` (the lesion map
    over the input at the input's resolution), and one ``predictions.json`` listing every input with its id, geometry,
    image-level lesion score (the map's maximum) and its files. Input paths are not recorded (a file name can carry a
    patient's name): ``image_id`` is the first 16 hex digits of the input file's SHA-256, so ``sha256sum`` maps an
    output back to its input.

    Args:
        output_dir: destination folder.
        write_restored: also write the restored image.
        overlay_alpha: opacity of the lesion map in the overlay.
    """

    def __init__(self, output_dir: str | os.PathLike, write_restored: bool = True, overlay_alpha: float = 0.6) -> None:
        self.output_dir = Path(output_dir)
        self.write_restored = write_restored
        self.overlay_alpha = overlay_alpha
        self.records: list[dict[str, Any]] = []
        self._loader = None

    def attach(self, engine: Engine) -> None:
        """Write after every iteration; write the index at completion.

        Args:
            engine: the inference evaluator.
        """
        engine.add_event_handler(Events.STARTED, lambda _: self.records.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.write_index)

    def _original(
        self, path: str | None, fallback: torch.Tensor
    ) -> tuple[np.ndarray, tuple[float, float] | None, bool]:
        """The input at its own resolution, its spacing, and whether that worked (re-read from ``path``).

        A file that changed on disk since screening falls back to the network's input size, logged and flagged.
        """
        if path:
            from radlas_monai.data.loader import LoadRadiograph

            self._loader = self._loader or LoadRadiograph()
            try:
                original = self._loader(path)
                spacing = original.meta.get("spacing")
                return original[0].numpy(), tuple(float(s) for s in spacing) if spacing is not None else None, True
            except RadiographReadError as err:
                logger.warning("could not re-read an input (%s); writing its maps at the network's size", err.kind)
        return fallback[0].cpu().numpy(), None, False

    def __call__(self, engine: Engine) -> None:
        from PIL import Image

        from radlas_monai.data.writers import write_nifti
        from radlas_monai.interpret.overlay import overlay_heatmap

        output = engine.state.output
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i, meta in enumerate(output["meta"]):
            image_id = meta["image_id"] or f"item{len(self.records):06d}"
            original, spacing, at_input_geometry = self._original(meta["filename_or_obj"], output["image"][i].detach())
            shape = original.shape
            lesion_map = resize_to(output["lesion_map"][i].detach().cpu(), shape)[0].clamp(0, 1).numpy()
            files = {"lesion_map": f"{image_id}_lesion_map.nii.gz", "overlay": f"{image_id}_overlay.png"}
            write_nifti(lesion_map.astype(np.float32), self.output_dir / files["lesion_map"], spacing=spacing)
            if self.write_restored:
                files["restored"] = f"{image_id}_restored.nii.gz"
                restored = resize_to(output["restored"][i].detach().cpu(), shape)[0].numpy()
                write_nifti(restored.astype(np.float32), self.output_dir / files["restored"], spacing=spacing)
            Image.fromarray(overlay_heatmap(original, lesion_map, alpha=self.overlay_alpha)).save(
                self.output_dir / files["overlay"]
            )
            self.records.append(
                {
                    "image_id": image_id,
                    "shape": [int(s) for s in shape],
                    "spacing": list(spacing) if spacing else None,
                    "at_input_geometry": at_input_geometry,
                    "lesion_score": float(lesion_map.max()),
                    "files": files,
                }
            )

    def write_index(self, engine: Engine | None = None) -> Path:
        """Write ``predictions.json`` (atomically) and log where the outputs are.

        Args:
            engine: unused (ignite passes it).

        Returns:
            The index path.
        """
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / "predictions.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"predictions": self.records}, indent=2))
        os.replace(tmp, path)
        logger.info(
            "wrote lesion maps of %d radiographs to %s (index %s)", len(self.records), self.output_dir, path.name
        )
        return path
