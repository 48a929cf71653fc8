"""What the ``finetune_classification`` bundle writes: the evaluation report and per-image predictions with evidence.

- :class:`ClassificationReport` (evaluation): collects the test predictions of an evaluator, predicts the
  validation split to choose per-class operating points, and writes ``metrics.json`` and ``roc.png``
  (:func:`radlas_monai.metrics.classification.classification_report`); the numbers also go to
  ``engine.state.metrics`` (``test_mean_auroc``, ``test_<class>_auroc``, ...), and both files to MLflow.
- :class:`ClassificationPredictionWriter` (inference): ``predictions.csv`` and ``predictions.json`` with every
  class probability per input, and ``<image_id>_<class>_evidence.png`` overlays for the top findings of each input,
  at the input's own resolution. Outputs are named by the non-identifying ``image_id`` only (see
  :class:`radlas_monai.engines.inference.PredictionWriter`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from radlas_monai.engines.inference import PredictionWriter, resize_to

__all__ = ["predict_probabilities", "ClassificationReport", "ClassificationPredictionWriter", "evidence_filename"]

logger = logging.getLogger(__name__)


def predict_probabilities(
    network: torch.nn.Module, loader: Any, device: torch.device | str = "cpu", amp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and one-hot/multi-hot targets of every labelled batch of ``loader``.

    Returns:
        ``(scores (N, K), labels (N, K))`` as float arrays.
    """
    from radlas_monai.engines.finetune import ClassifierEvalStep

    step = ClassifierEvalStep(amp=amp, cache_features=False)
    holder = type("_Engine", (), {})()
    holder.network, holder.state = network, type("_State", (), {"device": torch.device(device)})()
    scores, labels = [], []
    for batch in loader:
        output = step(holder, batch)
        scores.append(output["pred"].float().cpu())
        labels.append(output["label"].float().cpu())
    if not scores:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return torch.cat(scores).numpy(), torch.cat(labels).numpy()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "class"


def evidence_filename(image_id: str, class_name: str) -> str:
    """``<image_id>_<class>_evidence.png`` (class name with spaces and odd characters replaced by ``_``)."""
    return f"{image_id}_{_safe_name(class_name)}_evidence.png"


def _write_json(path: Path, payload: Any) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
    return path


class ClassificationReport:
    """Ignite handler for the evaluation ``SupervisedEvaluator`` (over the test split).

    Args:
        output_dir: folder of ``metrics.json`` and ``roc.png``.
        class_names: the classifier's classes.
        multi_label: sigmoid (True) or softmax (False) outputs.
        validation_loader: labelled validation batches; operating points are chosen on them (None: the
            ``default_threshold``, recorded as such).
        threshold_method: ``"youden"`` or ``"f1"``.
        tracking: a :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler` to log the files to (optional).
        amp: bf16 autocast for the validation predictions.
        prefix: prefix of the metric names in ``engine.state.metrics``.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        multi_label: bool = True,
        validation_loader: Any = None,
        threshold_method: str = "youden",
        tracking: Any = None,
        amp: bool = False,
        prefix: str = "test_",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = [str(n) for n in class_names]
        self.multi_label = bool(multi_label)
        self.validation_loader = validation_loader
        self.threshold_method = threshold_method
        self.tracking = tracking
        self.amp = amp
        self.prefix = prefix
        self.report: dict[str, Any] | None = None
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def attach(self, engine: Engine) -> None:
        """Collect every iteration's ``pred``/``label``; report at the end of the (single) epoch."""
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)

    def _reset(self, engine: Engine) -> None:
        self._scores.clear()
        self._labels.clear()

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):  # decollated
            output = {k: torch.stack([o[k] for o in output]) for k in ("pred", "label")}
        self._scores.append(output["pred"].detach().float().cpu())
        self._labels.append(output["label"].detach().float().cpu())

    def write(self, engine: Engine) -> dict[str, Any]:
        """Compute the report, write ``metrics.json`` / ``roc.png``, publish the metrics.

        Returns:
            The report (see :func:`~radlas_monai.metrics.classification.classification_report`).
        """
        from radlas_monai.metrics.classification import classification_report, write_roc_plot

        k = len(self.class_names)
        test_scores = torch.cat(self._scores).numpy() if self._scores else np.zeros((0, k))
        test_labels = torch.cat(self._labels).numpy() if self._labels else np.zeros((0, k))
        if self.validation_loader is not None:
            val_scores, val_labels = predict_probabilities(
                engine.network, self.validation_loader, engine.state.device, self.amp
            )
        else:
            val_scores, val_labels = np.zeros((0, k)), np.zeros((0, k))
        report = classification_report(
            val_scores.reshape(-1, k),
            val_labels.reshape(-1, k),
            test_scores,
            test_labels,
            self.class_names,
            self.multi_label,
            self.threshold_method,
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        metrics_path = _write_json(self.output_dir / "metrics.json", report)
        aurocs = {name: report["per_class"][name]["auroc"] for name in self.class_names}
        roc_path = write_roc_plot(report["roc"], self.output_dir / "roc.png", aurocs)
        metrics = engine.state.metrics
        for key in ("auroc", "sensitivity", "specificity", "f1"):
            metrics[f"{self.prefix}mean_{key}"] = report["mean"][key]
        metrics[f"{self.prefix}ece"] = report["ece"]
        for name in self.class_names:
            metrics[f"{self.prefix}{_safe_name(name)}_auroc"] = report["per_class"][name]["auroc"]
        for key in [k for k, v in metrics.items() if v is None]:
            metrics[key] = float("nan")
        if self.tracking is not None:
            self.tracking.log_artifact(metrics_path, "evaluation")
            self.tracking.log_artifact(roc_path, "evaluation")
        logger.info(
            "test mean AUROC %s, ECE %s over %d images; wrote %s and %s",
            report["mean"]["auroc"],
            report["ece"],
            report["num_test"],
            metrics_path,
            roc_path.name,
        )
        self.report = report
        return report


class ClassificationPredictionWriter(PredictionWriter):
    """Ignite handler writing per-input class probabilities and evidence overlays (see the module docstring).

    ``predictions.json``: ``{"class_names": [...], "predictions": [{"image_id", "shape", "at_input_geometry",
    "probabilities": {class: p}, "top_findings": [{"finding", "probability", "evidence"}], "lesion_score"}]}``;
    ``predictions.csv``: ``image_id``, one probability column per class, ``top_finding``.

    Args:
        output_dir: destination folder.
        class_names: the classifier's classes (column order).
        top_k: evidence overlays per input for its ``top_k`` most probable classes.
        min_probability: only classes at or above this probability get an overlay.
        overlay_alpha: opacity of the evidence map in the overlays.
        tracking: a :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler`; the overlays of the first
            ``max_logged_overlays`` inputs and the two index files are logged to it.
        max_logged_overlays: overlays logged to MLflow at most.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        top_k: int = 2,
        min_probability: float = 0.0,
        overlay_alpha: float = 0.6,
        tracking: Any = None,
        max_logged_overlays: int = 16,
    ) -> None:
        super().__init__(output_dir, write_restored=False, overlay_alpha=overlay_alpha)
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        self.class_names = [str(n) for n in class_names]
        self.top_k = int(top_k)
        self.min_probability = float(min_probability)
        self.tracking = tracking
        self.max_logged_overlays = int(max_logged_overlays)

    def __call__(self, engine: Engine) -> None:
        from PIL import Image

        from radlas_monai.interpret.overlay import overlay_heatmap

        output = engine.state.output
        self.output_dir.mkdir(parents=True, exist_ok=True)
        probabilities = output["pred"].detach().float().cpu()
        for i, meta in enumerate(output["meta"]):
            image_id = meta["image_id"] or f"item{len(self.records):06d}"
            original, _, at_input_geometry = self._original(meta["filename_or_obj"], output["image"][i].detach())
            shape = original.shape
            probs = probabilities[i].tolist()
            order = sorted(range(len(probs)), key=lambda k: -probs[k])[: self.top_k]
            top = []
            for k in (k for k in order if probs[k] >= self.min_probability):
                evidence = resize_to(output["evidence_maps"][i, k : k + 1].detach().cpu(), shape)[0]
                name = evidence_filename(image_id, self.class_names[k])
                rgb = overlay_heatmap(original, evidence.clamp(0, 1).numpy(), alpha=self.overlay_alpha)
                Image.fromarray(rgb).save(self.output_dir / name)
                if self.tracking is not None and len(self.records) < self.max_logged_overlays:
                    self.tracking.log_artifact(self.output_dir / name, "evidence")
                top.append({"finding": self.class_names[k], "probability": probs[k], "evidence": name})
            self.records.append(
                {
                    "image_id": image_id,
                    "shape": [int(s) for s in shape],
                    "at_input_geometry": at_input_geometry,
                    "probabilities": dict(zip(self.class_names, probs)),
                    "top_findings": top,
                    "lesion_score": float(output["lesion_map"][i].max()),
                }
            )

    def write_index(self, engine: Engine | None = None) -> Path:
        """Write ``predictions.json`` and ``predictions.csv`` (atomically).

        Returns:
            The JSON path.
        """
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = _write_json(
            self.output_dir / "predictions.json", {"class_names": self.class_names, "predictions": self.records}
        )
        csv_path = self.output_dir / "predictions.csv"
        tmp = csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_id", *self.class_names, "top_finding"])
            for record in self.records:
                probs = [record["probabilities"][n] for n in self.class_names]
                top = self.class_names[int(np.argmax(probs))] if probs else ""
                writer.writerow([record["image_id"], *(f"{p:.6f}" for p in probs), top])
        os.replace(tmp, csv_path)
        if self.tracking is not None:
            self.tracking.log_artifact(path, "predictions")
            self.tracking.log_artifact(csv_path, "predictions")
        logger.info("wrote class probabilities of %d radiographs to %s", len(self.records), self.output_dir)
        return path
