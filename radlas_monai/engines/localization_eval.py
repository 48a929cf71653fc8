"""Localization evaluation harness: several methods, one dataset, the field's measures, side by side.

Every method is a callable ``image (B, 1, S, S) in [0, 1] -> map (B, 1, S, S)`` (RadLAS's
:class:`~radlas_monai.networks.RadLASLesionMap`, a reconstruction residual, Grad-CAM, ...). Each batch of annotated
radiographs (:class:`~radlas_monai.engines.localization_data.LoadAnnotatedRadiograph`) goes through every method and
each map feeds that method's :class:`radlas_monai.metrics.localization.LocalizationMetrics`; at the end one
``metrics.json`` (the aggregate of every method), ``metrics.md`` (one table row per method) and ``froc.png`` (every
method's FROC curve) are written.

Two entry points share that code:

* :func:`evaluate_localization`: a plain function (the comparison scripts call it);
* :class:`LocalizationEvalStep` + :class:`LocalizationMetricsHandler`: the ``iteration_update`` and handler of a
  MONAI ``SupervisedEvaluator`` (``bundles/lesion_localization/configs/evaluate.json``), which also publish the
  scalar metrics in ``engine.state.metrics`` and hand the report files to a
  :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlas_monai.engines.pretrain import autocast_context

__all__ = [
    "ClassifierEvidenceMap",
    "LocalizationEvalStep",
    "LocalizationMetricsHandler",
    "bundle_methods",
    "evaluate_localization",
    "evaluation_items",
    "method_table",
    "published_metrics",
]

logger = logging.getLogger(__name__)

Method = Callable[[torch.Tensor], torch.Tensor]
REPORT_FILES = ("metrics.json", "metrics.md", "froc.png")
#: The columns of the one-row-per-method summary table of ``metrics.md``.
SUMMARY_KEYS: tuple[str, ...] = (
    "pointing_game",
    "mean_iou",
    "box_acc_iobb_0.1",
    "cnr",
    "pixel_auroc",
    "image_auroc",
    "froc_mean_sens",
    "jafroc_fom",
    "n_images",
    "n_lesions",
)


def _run_method(name: str, method: Method, pixels: torch.Tensor) -> torch.Tensor:
    maps = method(pixels)
    if not isinstance(maps, torch.Tensor) or tuple(maps.shape) != tuple(pixels.shape):
        raise ValueError(
            f"localization method {name!r} must map images {tuple(pixels.shape)} to maps of the same shape, got "
            f"{getattr(maps, 'shape', type(maps).__name__)}"
        )
    return maps.detach().float().cpu()


class LocalizationEvalStep:
    """``iteration_update``: run every method on a batch of annotated radiographs.

    Args:
        methods: ``name -> callable``; ``None`` evaluates the engine's own network as ``"radlas"``.
        device: where the methods run; default the engine's device (``cpu`` for a plain ignite engine).
        amp: bf16 autocast for the forward passes.

    Returns (per call):
        ``{"maps": {name: (B, 1, S, S) cpu float32}, "annotation": [per-image dict], "image_id": [str]}``.
    """

    def __init__(self, methods: Mapping[str, Method] | None = None, device: Any = None, amp: bool = False) -> None:
        self.methods = dict(methods) if methods is not None else None
        self.device = device
        self.amp = amp

    def __call__(self, engine: Any, batchdata: Mapping[str, Any]) -> dict[str, Any]:
        state_device = getattr(getattr(engine, "state", None), "device", None)
        device = torch.device(self.device or state_device or "cpu")
        methods = self.methods if self.methods is not None else {"radlas": engine.network}
        pixels = torch.as_tensor(batchdata["image"]).to(device).float()
        for method in methods.values():
            if isinstance(method, torch.nn.Module):
                method.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            maps = {name: _run_method(name, method, pixels) for name, method in methods.items()}
        return {"maps": maps, "annotation": batchdata["annotation"], "image_id": batchdata.get("image_id")}


class ClassifierEvidenceMap(torch.nn.Module):
    """A classifier's grounded evidence as one map: ``max_k p_k * evidence_k`` (``(B, 1, H, W)`` in ``[0, 1]``).

    Args:
        classifier: a ``RadLASClassifier`` (``forward -> ClassifierOutput`` with ``logits (B, K)`` and
            ``evidence_maps (B, K, H, W)``); probabilities are ``sigmoid`` (multi-label) or ``softmax``.
    """

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Evidence map ``(B, 1, H, W)``."""
        output = self.classifier(image)
        logits = output.logits.float()
        multi_label = getattr(self.classifier, "multi_label", True)
        probabilities = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)
        weighted = probabilities[:, :, None, None] * output.evidence_maps.float().clamp(0, 1)
        return weighted.amax(dim=1, keepdim=True)


def bundle_methods(
    network: Method, classifier: torch.nn.Module | None = None, baselines: Mapping[str, Method] | None = None
) -> dict[str, Method]:
    """The methods ``evaluate.json`` scores: ``"radlas"``, ``"radlas_classifier"`` (with a classifier), baselines.

    Args:
        network: the RadLAS lesion-map network.
        classifier: an optional trained classifier (scored through :class:`ClassifierEvidenceMap`).
        baselines: further ``name -> callable`` methods, scored on the same batches.

    Returns:
        ``name -> callable``, RadLAS first.

    Raises:
        ValueError: a baseline reuses a built-in name.
    """
    methods: dict[str, Method] = {"radlas": network}
    if classifier is not None:
        methods["radlas_classifier"] = ClassifierEvidenceMap(classifier)
    clash = sorted(set(methods) & set(baselines or {}))
    if clash:
        raise ValueError(f"baseline names {clash} clash with the built-in methods {sorted(methods)}")
    methods.update(baselines or {})
    return methods


def published_metrics(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The finite scalars of every method, ``<method>/<metric>`` (and ``<method>/<finding>/<metric>``, CIs).

    Args:
        results: ``method -> aggregate dict``.

    Returns:
        Flat ``{name: float}`` for ``engine.state.metrics`` and MLflow (undefined, NaN metrics are left out).
    """
    from radlas_monai.metrics.report import scalar_metrics

    out = {}
    for method, aggregate in results.items():
        flat = scalar_metrics(aggregate, include_per_class=True, include_ci=True)
        out.update({f"{method}/{k}": v for k, v in flat.items() if np.isfinite(v)})
    return out


def _cell(aggregate: Mapping[str, Any], key: str) -> str:
    value = aggregate.get(key)
    if value is None or not np.isfinite(float(value)):
        return "n/a"
    if key.startswith("n_"):
        return f"{float(value):g}"
    interval = (aggregate.get("ci") or {}).get(key)
    ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval is not None and np.all(np.isfinite(interval)) else ""
    return f"{float(value):.3f}{ci}"


def method_table(results: Mapping[str, Mapping[str, Any]], keys: tuple[str, ...] = SUMMARY_KEYS) -> str:
    """A markdown table with one row per method and the headline metrics as columns (95 % CIs in brackets).

    Args:
        results: ``method -> aggregate dict``.
        keys: the columns.

    Returns:
        The table, ending with a newline.
    """
    header = "| method | " + " | ".join(keys) + " |"
    rule = "|---|" + "---|" * len(keys)
    rows = [f"| {name} | " + " | ".join(_cell(agg, k) for k in keys) + " |" for name, agg in results.items()]
    return "\n".join([header, rule, *rows]) + "\n"


def _new_metrics(bootstrap: int, seed: int) -> Any:
    from radlas_monai.metrics.localization import LocalizationMetrics

    return LocalizationMetrics(bootstrap=bootstrap, seed=seed)


def _write_reports(results: Mapping[str, Mapping[str, Any]], output_dir: Path) -> dict[str, Path]:
    """``metrics.json``, ``metrics.md`` and ``froc.png`` of every method."""
    from radlas_monai.metrics.report import markdown_table, plot_froc

    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: output_dir / name for name in REPORT_FILES}
    tmp = paths["metrics.json"].with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float) + "\n")
    os.replace(tmp, paths["metrics.json"])
    parts = ["# Localization metrics\n", method_table(results), "\n## All metrics\n", markdown_table(results)]
    findings = dict.fromkeys(f for agg in results.values() for f in (agg.get("per_class") or {}))
    parts += [f"\n## {finding}\n\n" + markdown_table(results, finding=finding) for finding in findings]
    paths["metrics.md"].write_text("\n".join(parts))
    plot_froc(results, paths["froc.png"])
    return paths


class LocalizationMetricsHandler:
    """Ignite handler: one ``LocalizationMetrics`` per method, fed from :class:`LocalizationEvalStep` outputs.

    At ``EPOCH_COMPLETED`` it aggregates, writes ``metrics.json`` / ``metrics.md`` / ``froc.png`` to ``output_dir``,
    stores the scalar metrics in ``engine.state.metrics`` (:func:`published_metrics`, e.g. ``radlas/pointing_game``)
    and, with ``tracking``, logs the three files as MLflow artifacts under ``localization/`` (the tracking handler
    logs ``engine.state.metrics`` itself).

    Args:
        output_dir: where the reports go.
        bootstrap: bootstrap resamples for the 95 % confidence intervals (0: none).
        seed: seed of the bootstrap.
        tracking: an optional :class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler`.

    Attributes:
        results: ``method -> aggregate dict`` after the run.
    """

    def __init__(
        self, output_dir: str | os.PathLike, bootstrap: int = 200, seed: int = 0, tracking: Any = None
    ) -> None:
        self.output_dir = Path(output_dir)
        self.bootstrap = int(bootstrap)
        self.seed = int(seed)
        self.tracking = tracking
        self.metrics: dict[str, Any] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.num_images = 0

    def attach(self, engine: Any) -> None:
        """Reset at ``STARTED``, update at ``ITERATION_COMPLETED``, report at ``EPOCH_COMPLETED``.

        Args:
            engine: the evaluator.
        """
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.report)

    def reset(self, engine: Any = None) -> None:
        """Forget everything accumulated."""
        self.metrics, self.results, self.num_images = {}, {}, 0

    def update(self, engine: Any) -> None:
        """Feed every image's map of every method to that method's accumulator."""
        output = engine.state.output
        annotations = output["annotation"]
        for name, maps in output["maps"].items():
            if name not in self.metrics:
                self.metrics[name] = _new_metrics(self.bootstrap, self.seed)
            for heatmap, annotation in zip(maps.numpy(), annotations):
                self.metrics[name].update(heatmap[0], annotation)
        self.num_images += len(annotations)

    def report(self, engine: Any = None) -> dict[str, dict[str, Any]]:
        """Aggregate, write the reports, publish the scalars; returns ``method -> aggregate``."""
        if not self.metrics:
            raise ValueError("no image was evaluated: the dataset is empty")
        self.results = {name: metric.aggregate() for name, metric in self.metrics.items()}
        paths = _write_reports(self.results, self.output_dir)
        if engine is not None:
            engine.state.metrics.update(published_metrics(self.results))
        if self.tracking is not None:
            for path in paths.values():
                self.tracking.log_artifact(path, "localization")
        logger.info(
            "localization metrics of %d methods on %d images written to %s",
            len(self.results),
            self.num_images,
            self.output_dir,
        )
        return self.results


def evaluation_items(
    items: list[dict], output_dir: str | os.PathLike, strict: bool = False, limit: int = 0
) -> list[dict]:
    """The items that can be scored and read: annotated or normal, image and mask readable.

    Unreadable files are left out and reported in ``output_dir/skipped.json``
    (:func:`radlas_monai.data.screening.screen_datalist`); abnormal items without any lesion geometry are left out
    with a warning (nothing to score them against).

    Args:
        items: datalist items with absolute paths.
        output_dir: where ``skipped.json`` goes.
        strict: fail at the first unreadable file instead.
        limit: keep only the first ``limit`` usable items (``0`` keeps all).

    Returns:
        The usable items, in order.

    Raises:
        ValueError: when no item is left.
    """
    from radlas_monai.data.screening import screen_datalist
    from radlas_monai.engines.localization_data import has_annotation

    usable = [item for item in items if has_annotation(item)]
    if len(usable) < len(items):
        logger.warning("%d items have findings but no boxes, centres or mask: not scored", len(items) - len(usable))
    if limit:
        usable = usable[:limit]
    report = Path(output_dir) / "skipped.json"
    good, _ = screen_datalist(usable, keys=("image", "mask"), strict=strict, report_path=report, progress=False)
    if not good:
        raise ValueError(f"no readable, annotated radiograph among {len(items)} items (see {report})")
    return good


def evaluate_localization(
    methods: Mapping[str, Method],
    items: list[dict],
    image_size: int,
    output_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    bootstrap: int = 200,
    seed: int = 0,
    num_workers: int = 0,
    amp: bool = False,
) -> dict[str, dict[str, Any]]:
    """Evaluate localization methods side by side on the same annotated radiographs.

    Each item's image is read and resized to ``image_size x image_size`` and its boxes / centres+radii / mask are
    rescaled to that grid (:mod:`radlas_monai.engines.localization_data`); every method sees the same batches.

    Args:
        methods: ``name -> callable (B, 1, S, S) -> (B, 1, S, S)`` (maps in ``[0, 1]`` by convention).
        items: datalist items (absolute paths), with ``boxes``, ``centers`` + ``radii`` or ``mask``; normal images
            (no findings) are the negatives of FROC and image AUROC.
        image_size: the evaluated side ``S``.
        output_dir: where ``metrics.json``, ``metrics.md``, ``froc.png`` and ``skipped.json`` go.
        device: where the methods run.
        batch_size: images per batch.
        bootstrap: bootstrap resamples of the confidence intervals (0: none).
        seed: seed of the bootstrap.
        num_workers: DataLoader workers reading images.
        amp: bf16 autocast for the methods.

    Returns:
        ``method -> aggregate dict`` (``LocalizationMetrics.aggregate()``).

    Raises:
        ValueError: no method, or no usable item.
    """
    from ignite.engine import Engine
    from monai.data import Dataset
    from torch.utils.data import DataLoader

    from radlas_monai.engines.localization_data import LoadAnnotatedRadiograph, collate_annotated

    if not methods:
        raise ValueError("evaluate_localization needs at least one method")
    usable = evaluation_items(list(items), output_dir)
    dataset = Dataset(usable, transform=LoadAnnotatedRadiograph(image_size))
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_annotated
    )
    engine = Engine(LocalizationEvalStep(methods, device=device, amp=amp))
    handler = LocalizationMetricsHandler(output_dir, bootstrap=bootstrap, seed=seed)
    handler.attach(engine)
    engine.run(loader, max_epochs=1)
    return handler.results
