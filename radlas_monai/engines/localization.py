"""Lesion localization inference: radiographs in; heat maps, masks, scored boxes and findings out, per input.

``SupervisedEvaluator(network=RadLASLesionMap(...), iteration_update=LocalizationInferenceStep(...),
val_handlers=[LocalizationWriter(...)])`` runs it (``bundles/lesion_localization/configs/inference.json``). The step
computes the lesion map at the network's size (and, with a classifier, per-class evidence maps and probabilities); the
writer brings the map back to the input's own geometry, turns it into a mask and scored boxes with
:func:`radlas_monai.interpret.localize.localize` (one implementation, shared with the metrics and MONAI Label), and
writes the files. Boxes are therefore in the *input's* pixel coordinates.

Output files are named by the input's non-identifying ``image_id`` (a hash of the file's bytes, see
:class:`radlas_monai.data.loader.LoadRadiograph`), never by a file name or any DICOM identifier.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlas_monai.engines.inference import PredictionWriter, _per_item, resize_to
from radlas_monai.engines.pretrain import autocast_context

__all__ = [
    "LocalizationInferenceStep",
    "LocalizationWriter",
    "assign_box_findings",
    "draw_boxes",
    "load_classifier",
    "load_lesion_map_network",
    "localization_inputs",
]

logger = logging.getLogger(__name__)

_TRAIN_COMMAND = "python -m monai.bundle run --config_file bundles/pretrain/configs/train.json"
_BOX_COLOUR = np.array([0, 255, 255], dtype=np.uint8)  # cyan: visible over grey and over the 'hot' colormap


def _missing_checkpoint(path: str | os.PathLike, what: str, command: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"no {what} checkpoint at {os.fspath(path)}: train one first with `{command}` "
        f"(or pass --ckpt_path /path/to/model.pt)"
    )


def load_lesion_map_network(
    network: torch.nn.Module, ckpt_path: str | os.PathLike, map_location: Any = "cpu"
) -> torch.nn.Module:
    """Load pretrain weights into a :class:`~radlas_monai.networks.RadLASLesionMap` (or a bare ``RadLAS``).

    Accepts the pretrain bundle's ``model.pt`` (a ``RadLAS`` state dict), a full pretrain checkpoint (its
    ``"network"`` entry) and a state dict of the wrapper itself (keys prefixed ``network.``, as ``ckpt_export``
    writes it).

    Args:
        network: the inference network (``network_def``), already on its device.
        ckpt_path: the checkpoint file.
        map_location: passed to ``torch.load``.

    Returns:
        ``network`` in eval mode, for chaining in bundle configs.

    Raises:
        FileNotFoundError: no file at ``ckpt_path``; the message gives the command that trains one.
        CheckpointError: unreadable file; StateDictMismatchError: wrong architecture or preset.
    """
    from radlas_monai.handlers.checkpoint_io import load_checkpoint, load_network_state

    if not Path(ckpt_path).is_file():
        raise _missing_checkpoint(ckpt_path, "pretrain", _TRAIN_COMMAND)
    checkpoint = load_checkpoint(ckpt_path, map_location=map_location)
    state = checkpoint["network"] if isinstance(checkpoint.get("network"), Mapping) else checkpoint
    wrapped = state and all(str(k).startswith("network.") for k in state)
    target = network if wrapped or not hasattr(network, "network") else network.network
    load_network_state(target, state, path=ckpt_path)
    logger.info("loaded lesion-map weights from %s", ckpt_path)
    return network.eval()


def load_classifier(
    ckpt_path: str | os.PathLike | None,
    class_names: Sequence[str],
    preset: str = "tiny",
    image_size: int = 256,
    device: Any = "cpu",
    multi_label: bool = True,
) -> torch.nn.Module | None:
    """A trained :class:`~radlas_monai.networks.classifier.RadLASClassifier`, or ``None`` without a checkpoint.

    Args:
        ckpt_path: the finetune bundle's ``models/model.pt`` (state dict of the whole classifier); empty/None: none.
        class_names: the classifier's classes, in its output order.
        preset: encoder preset the classifier was trained with.
        image_size: its input size.
        device: where it runs.
        multi_label: sigmoid (True) or softmax (False) head, as trained.

    Returns:
        The classifier in eval mode, or ``None``.

    Raises:
        FileNotFoundError: ``ckpt_path`` is given but missing.
    """
    if not ckpt_path:
        return None
    if not Path(ckpt_path).is_file():
        command = "python -m monai.bundle run --config_file bundles/finetune_classification/configs/train.json"
        raise _missing_checkpoint(ckpt_path, "classifier", command)
    from radlas_monai.handlers.checkpoint_io import load_network_weights
    from radlas_monai.networks.classifier import RadLASClassifier

    # the whole classifier's weights come from ckpt_path: no pretrain checkpoint is read first
    classifier = RadLASClassifier(
        class_names=list(class_names), preset=preset, img_size=image_size, multi_label=multi_label, from_scratch=True
    )
    return load_network_weights(classifier.to(device), ckpt_path, map_location=device).eval()


def localization_inputs(
    dataset_dir: str | os.PathLike | None,
    datalist: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    *,
    split: str = "test",
    strict: bool = False,
    limit: int = 0,
    synthetic_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """The radiographs an inference run reads (see :func:`radlas_monai.engines.data.inference_items`).

    Unlike the pretrain bundle, nothing that names the inputs is left in ``output_dir`` except the skip report of
    bad files: the datalist built from a folder lives in a temporary folder, and the screening report is written as
    ``output_dir/skipped.json`` (``{"checked", "num_skipped", "counts", "skipped": [{"path", "key", "kind",
    "reason"}]}``).

    Args:
        dataset_dir: a folder of radiographs (searched recursively), or empty/None.
        datalist: a datalist JSON, or empty/None (datalist > folder > the embedded synthetic ``split``).
        output_dir: where ``skipped.json`` is written.
        split: which split of a datalist (or of the synthetic dataset) to read.
        strict: fail at the first unreadable file instead of skipping it.
        limit: keep only the first ``limit`` items (``0`` keeps all).
        synthetic_images: size of the default synthetic dataset.
        image_size: image size of the default synthetic dataset.
        seed: seed of the default synthetic dataset.

    Returns:
        Items ``{"image": absolute path}`` that read cleanly.

    Raises:
        ValueError: no readable radiograph; FileNotFoundError: a missing ``dataset_dir`` or ``datalist``.
    """
    from radlas_monai.engines.data import inference_items

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="radlas_localization_") as work:
        try:
            items = inference_items(
                dataset_dir,
                datalist,
                work,
                split=split,
                strict=strict,
                limit=limit,
                synthetic_images=synthetic_images,
                image_size=image_size,
                seed=seed,
            )
        finally:
            reports = sorted(Path(work).glob("skipped_*.json"))
            if reports:
                shutil.copyfile(reports[0], output_dir / "skipped.json")
    return items


def draw_boxes(rgb: np.ndarray, boxes: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """Draw box outlines into an RGB image (a copy).

    Args:
        rgb: ``(H, W, 3)`` uint8.
        boxes: ``[x0, y0, x1, y1]`` per box, pixel coordinates, ``x1`` / ``y1`` exclusive.
        width: line width in pixels (default: 1 per 256 pixels of the shorter side, at least 1).

    Returns:
        ``(H, W, 3)`` uint8 with cyan outlines.
    """
    out = np.array(rgb, dtype=np.uint8, copy=True)
    height, wide = out.shape[:2]
    width = width or max(1, round(min(height, wide) / 256))
    for x0, y0, x1, y1 in (np.clip(np.asarray(b, dtype=int), 0, [wide, height, wide, height]) for b in boxes):
        if x1 <= x0 or y1 <= y0:
            continue
        out[y0 : min(y0 + width, y1), x0:x1] = _BOX_COLOUR
        out[max(y1 - width, y0) : y1, x0:x1] = _BOX_COLOUR
        out[y0:y1, x0 : min(x0 + width, x1)] = _BOX_COLOUR
        out[y0:y1, max(x1 - width, x0) : x1] = _BOX_COLOUR
    return out


def assign_box_findings(
    boxes: Sequence[Sequence[int]],
    evidence_maps: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
) -> list[tuple[str, float]]:
    """The finding each box supports: the class with the largest ``probability x mean evidence inside the box``.

    Args:
        boxes: ``[x0, y0, x1, y1]`` per box in the maps' pixel coordinates.
        evidence_maps: ``(K, H, W)`` per-class evidence in ``[0, 1]``.
        probabilities: ``(K,)`` class probabilities of the image.
        class_names: ``K`` names.

    Returns:
        ``(finding, support)`` per box, support in ``[0, 1]``.

    Raises:
        ValueError: when the sizes disagree.
    """
    evidence_maps, probabilities = np.asarray(evidence_maps), np.asarray(probabilities)
    if (
        evidence_maps.ndim != 3
        or evidence_maps.shape[0] != len(class_names)
        or probabilities.shape != (len(class_names),)
    ):
        raise ValueError(
            f"expected evidence (K, H, W) and probabilities (K,) for K={len(class_names)} classes, got "
            f"{evidence_maps.shape} and {probabilities.shape}"
        )
    found = []
    for x0, y0, x1, y1 in boxes:
        region = evidence_maps[:, int(y0) : max(int(y1), int(y0) + 1), int(x0) : max(int(x1), int(x0) + 1)]
        support = region.reshape(len(class_names), -1).mean(axis=1) * probabilities
        best = int(np.argmax(support))
        found.append((str(class_names[best]), float(support[best])))
    return found


class LocalizationInferenceStep:
    """``iteration_update`` of the inference evaluator: lesion map (and classifier evidence) per input.

    Args:
        classifier: optional trained ``RadLASClassifier`` (its ``forward`` returns ``logits (B, K)`` and
            ``evidence_maps (B, K, H, W)``); its probabilities are ``sigmoid`` (multi-label) or ``softmax``.
        amp: bf16 autocast for the forward passes.

    Returns (per call):
        ``{"image", "lesion_map"}`` ``(B, 1, h, w)`` at the network's size, ``"meta"`` (``image_id`` and
        ``filename_or_obj`` per input) and, with a classifier, ``"evidence_maps" (B, K, h, w)``,
        ``"probabilities" (B, K)`` and ``"class_names"``.
    """

    def __init__(self, classifier: torch.nn.Module | None = None, amp: bool = False) -> None:
        self.classifier = classifier
        self.amp = amp

    def _classify(self, pixels: torch.Tensor) -> dict[str, Any]:
        result = self.classifier(pixels)
        logits = result.logits.float()
        multi_label = getattr(self.classifier, "multi_label", True)
        probabilities = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)
        return {
            "evidence_maps": result.evidence_maps.float().clamp(0, 1),
            "probabilities": probabilities,
            "class_names": list(getattr(result, "class_names", None) or self.classifier.class_names),
        }

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        image = batchdata["image"]
        meta = dict(getattr(image, "meta", {}) or {})
        size = image.shape[0]
        device = torch.device(engine.state.device)
        pixels = (image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)).to(device).float()
        engine.network.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            lesion_map = engine.network(pixels)
            extra = self._classify(pixels) if self.classifier is not None else {}
        if not isinstance(lesion_map, torch.Tensor) or tuple(lesion_map.shape) != tuple(pixels.shape):
            raise ValueError(
                f"the inference network must return one lesion map shaped like its input {tuple(pixels.shape)}, "
                f"got {getattr(lesion_map, 'shape', type(lesion_map).__name__)}"
            )
        ids, paths = _per_item(meta.get("image_id"), size), _per_item(meta.get("filename_or_obj"), size)
        return {
            "image": pixels,
            "lesion_map": lesion_map.float().clamp(0, 1),
            "meta": [{"image_id": ids[i], "filename_or_obj": paths[i]} for i in range(size)],
            **extra,
        }


class LocalizationWriter(PredictionWriter):
    """Ignite handler writing, per input with id ``<id>``, in ``output_dir``:

    * ``<id>_heatmap.nii.gz``: the lesion map, float32 in ``[0, 1]``, the input's rows x columns and spacing
      (DICOM inputs keep their pixel spacing);
    * ``<id>_mask.png``: the binary lesion mask, uint8 ``0`` / ``255``, input geometry;
    * ``<id>_overlay.png``: the map over the input with the boxes outlined, for people;
    * ``<id>.json``: ``boxes`` (``{"box": [x0, y0, x1, y1], "score", "area"}`` in input pixels, ``x1`` / ``y1``
      exclusive; plus ``"finding"`` and ``"finding_support"`` with a classifier), ``peaks``, ``image_score``,
      ``heatmap_range``, the threshold used and, with a classifier, ``probabilities`` per class;

    and at the end ``predictions.json`` (one record per input: id, geometry, image score, box count, files). Input
    paths and DICOM identifiers are never written (``sha256sum`` of an input gives its id).

    Args:
        output_dir: destination folder.
        threshold_method: ``"otsu"``, ``"fixed"`` or ``"percentile"`` (see ``radlas_monai.interpret``).
        threshold_value: the fixed threshold (``[0, 1]``) or percentile (``[0, 100]``).
        min_area: smallest box (component) kept, in input pixels.
        max_boxes: most boxes kept per image (highest scores first).
        overlay_alpha: opacity of the map in the overlay.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        threshold_method: str = "otsu",
        threshold_value: float | None = None,
        min_area: int = 16,
        max_boxes: int = 10,
        overlay_alpha: float = 0.6,
    ) -> None:
        super().__init__(output_dir, write_restored=False, overlay_alpha=overlay_alpha)
        self.threshold_method = threshold_method
        self.threshold_value = threshold_value
        self.min_area = int(min_area)
        self.max_boxes = int(max_boxes)

    def _localize(self, heatmap: np.ndarray) -> Any:
        from radlas_monai.interpret.localize import localize

        return localize(
            heatmap,
            method=self.threshold_method,
            value=self.threshold_value,
            min_area=self.min_area,
            max_boxes=self.max_boxes,
        )

    def _record(self, image_id: str, loc: Any, shape: tuple, spacing: Any, files: dict[str, str]) -> dict[str, Any]:
        return {
            "image_id": image_id,
            "shape": [int(s) for s in shape],
            "spacing": [float(s) for s in spacing] if spacing else None,
            "image_score": float(loc.image_score),
            "heatmap_range": [float(v) for v in loc.heatmap_range],
            "threshold": {"method": self.threshold_method, "value": self.threshold_value},
            "boxes": [
                {"box": [int(v) for v in b.box], "score": float(b.score), "area": int(b.area)} for b in loc.boxes
            ],
            "peaks": [{"x": float(p.x), "y": float(p.y), "score": float(p.score)} for p in loc.peaks],
            "files": files,
        }

    @staticmethod
    def _add_findings(record: dict[str, Any], output: Mapping[str, Any], index: int, shape: tuple) -> None:
        names = list(output["class_names"])
        probabilities = output["probabilities"][index].detach().cpu().numpy()
        evidence = resize_to(output["evidence_maps"][index].detach().cpu(), shape).clamp(0, 1).numpy()
        boxes = [b["box"] for b in record["boxes"]]
        for box, (finding, support) in zip(record["boxes"], assign_box_findings(boxes, evidence, probabilities, names)):
            box["finding"], box["finding_support"] = finding, support
        record["probabilities"] = {name: float(p) for name, p in zip(names, probabilities)}

    def __call__(self, engine: Any) -> None:
        from PIL import Image

        from radlas_monai.data.writers import write_nifti, write_png
        from radlas_monai.interpret.overlay import overlay_heatmap

        output = engine.state.output
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i, meta in enumerate(output["meta"]):
            image_id = meta["image_id"] or f"item{len(self.records):06d}"
            original, spacing, at_input_geometry = self._original(meta["filename_or_obj"], output["image"][i].detach())
            shape = original.shape
            heatmap = resize_to(output["lesion_map"][i].detach().cpu(), shape)[0].clamp(0, 1).numpy()
            loc = self._localize(heatmap)
            files = {k: f"{image_id}{s}" for k, s in (("heatmap", "_heatmap.nii.gz"), ("mask", "_mask.png"))}
            files.update(overlay=f"{image_id}_overlay.png", json=f"{image_id}.json")
            record = self._record(image_id, loc, shape, spacing, files)
            if "evidence_maps" in output:
                self._add_findings(record, output, i, shape)
            write_nifti(heatmap.astype(np.float32), self.output_dir / files["heatmap"], spacing=spacing)
            write_png((np.asarray(loc.mask) > 0).astype(np.uint8) * 255, self.output_dir / files["mask"])
            overlay = overlay_heatmap(original, heatmap, alpha=self.overlay_alpha)
            Image.fromarray(draw_boxes(overlay, [b["box"] for b in record["boxes"]])).save(
                self.output_dir / files["overlay"]
            )
            _write_json(record, self.output_dir / files["json"])
            summary = {k: record[k] for k in ("image_id", "shape", "spacing", "image_score", "files")}
            self.records.append({**summary, "at_input_geometry": at_input_geometry, "num_boxes": len(record["boxes"])})


def _write_json(content: Any, path: Path) -> None:
    """Pretty JSON, written atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)
