"""Robust MLflow tracking for RadLAS bundles: one new run per job, failures never stop training.

:class:`RadLASMLFlowHandler` replaces MONAI's ``MLFlowHandler`` in the RadLAS bundles. It is a
focused rewrite rather than a subclass, because the behaviours that matter here are the ones
MONAI's handler gets wrong for concurrent, crash-prone jobs on a shared SQLite store:

- **one new run per job**: the run name defaults to ``<experiment>-<timestamp>-<uuid8>`` and a run
  is always created, never looked up, so a job never logs into another job's unfinished run;
- **crashed jobs are closed**: at start, ``RUNNING`` runs of the experiment whose owner process is
  gone are marked ``FAILED`` (see :mod:`radlas_monai.handlers.mlflow_runs`);
- **the store is prepared once, safely** before training (:func:`prepare_tracking_store`: file lock,
  schema creation/upgrade), and an unusable store fails at start with a
  :class:`~radlas_monai.handlers.mlflow_store.TrackingStoreError` naming the URI;
- **no tracking error stops training**: after start, every MLflow call goes through
  :class:`~radlas_monai.handlers.mlflow_buffer.BufferedMlflowWriter` (buffer, one warning per kind,
  retry later) and SQLite waits at most ``sqlite_timeout_s`` per call instead of MLflow's 20 s.

The same handler object is attached to the trainer and to the validation evaluator (list it in
both ``train#handlers`` and ``validate#handlers``); it detects which is which (a MONAI
``Evaluator`` is an evaluator, any other engine a trainer; pass ``role`` for plain ignite engines).

What is logged:

=========================  ================================================================
params                     the flattened config (:func:`flatten_params`), ``params``, and the
                           trainer's ``max_epochs`` / ``epoch_length``
``train/<loss term>``      every ``iteration_interval`` iterations, step = iteration
``train/lr``               learning rate of the optimizer's first param group (``lr_group<i>``
                           for the others), same steps
``train_epoch/<term>``     mean of each loss term over the epoch, step = epoch
``train/<metric>``         the trainer's ``engine.state.metrics``, step = epoch
``val/<metric>``           the evaluator's ``engine.state.metrics`` after each validation, step
                           = trainer epoch (``eval/<metric>`` for a standalone evaluator)
artifacts                  ``config/`` (the executed config), ``images/`` (:meth:`log_image`),
                           ``checkpoints/`` (``checkpoint_path`` and ``weights_path`` at completion)
tags                       ``radlas.bundle``, ``radlas.parent_run_id``, ``radlas.checkpoint_sha256``,
                           ``radlas.pid`` / ``radlas.host`` / ``radlas.pid_start``,
                           ``radlas.failure_reason`` on failure
=========================  ================================================================

The run ends ``FINISHED`` on completion, ``FAILED`` on an exception (``KILLED`` on
``KeyboardInterrupt``); the exception is re-raised. What could not be flushed before the end is
written to ``<output_dir>/mlflow_unflushed_<run name>.json``.

Example (bundle JSON)::

    "mlflow_handler": {
        "_target_": "radlas_monai.handlers.tracking.RadLASMLFlowHandler",
        "tracking_uri": "@tracking_uri", "experiment_name": "radlas_pretrain",
        "bundle": "pretrain", "config": "$@bundle_root + '/configs/train.json'",
        "output_dir": "@output_dir", "checkpoint_path": "$@output_dir + '/checkpoint_best.pt'"
    },
    "train#handlers": [..., "@mlflow_handler"], "validate#handlers": [..., "@mlflow_handler"]
"""

from __future__ import annotations

import collections
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radlas_monai.handlers.config_params import ConfigLike, flatten_params, load_config
from radlas_monai.handlers.logged_values import (
    as_float,
    default_loss_transform,
    image_to_uint8,
    is_scalar,
    metric_scalars,
)
from radlas_monai.handlers.mlflow_buffer import BufferedMlflowWriter
from radlas_monai.handlers.mlflow_runs import (
    TAG_FAILURE_REASON,
    mark_stale_runs_failed,
    owner_tags,
    unique_run_name,
)
from radlas_monai.handlers.mlflow_store import prepare_tracking_store, resolve_tracking_uri, set_sqlite_busy_timeout
from radlas_monai.handlers.roles import engine_role

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["RadLASMLFlowHandler", "default_loss_transform", "TAG_BUNDLE", "TAG_PARENT_RUN", "TAG_CHECKPOINT_SHA256"]

logger = logging.getLogger(__name__)

TAG_BUNDLE = "radlas.bundle"
TAG_PARENT_RUN = "radlas.parent_run_id"
TAG_CHECKPOINT_SHA256 = "radlas.checkpoint_sha256"


class RadLASMLFlowHandler:
    """Ignite handler logging a RadLAS job to MLflow; see the module docstring for what and why.

    Args:
        tracking_uri: store URI; ``None`` -> ``MLFLOW_TRACKING_URI`` -> the RadLAS default
            (:func:`~radlas_monai.handlers.mlflow_store.default_tracking_uri`).
        experiment_name: MLflow experiment (created with its artifacts next to the database).
        run_name: run name; ``None`` for a unique ``<experiment>-<timestamp>-<uuid8>``. A new run is
            created in every case.
        bundle: value of the ``radlas.bundle`` tag (``"pretrain"``, ``"finetune_classification"``,
            ``"lesion_localization"``).
        parent_run_id: value of the ``radlas.parent_run_id`` tag (lineage: the pretrain run of a
            finetune run, ...).
        config: the executed config (mapping, JSON/YAML file or files): flattened into params and
            logged as an artifact under ``config/``.
        params: extra params (flattened the same way).
        tags: extra run tags.
        iteration_interval: log the loss terms every this many iterations (the epoch means use
            every iteration).
        loss_transform: ``engine.state.output`` -> ``{term: value}`` or a scalar.
        checkpoint_path: checkpoint file(s) logged under ``checkpoints/`` at completion.
        weights_path: the weights file that downstream bundles load (the bundles' ``models/model.pt``), logged
            under ``checkpoints/`` too; its SHA-256 is the ``radlas.checkpoint_sha256`` tag, the digest a downstream
            run records as ``radlas.parent_checkpoint_sha256`` (:func:`radlas_monai.engines.lineage.lineage_tags`).
            ``None``: the ``model.pt`` next to the first ``checkpoint_path`` when it exists at completion, else the
            first existing ``checkpoint_path``.
        output_dir: folder for rendered images, the config copy and unflushed-entry dumps;
            ``None`` for a new temporary folder.
        sqlite_timeout_s: longest wait of one call on a locked SQLite store.
        retry_interval_s: after a tracking failure, ordinary log calls wait this long before
            retrying (epoch ends and completion always retry).
        final_flush_timeout_s: at completion, how long to keep retrying buffered entries.
        max_param_length: longest param value (characters), see :func:`flatten_params`.
        max_params: most params logged from the config.
        mark_stale_runs: close ``RUNNING`` runs whose owner process is gone at start.

    Raises:
        ValueError: ``iteration_interval`` < 1.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str = "radlas",
        run_name: str | None = None,
        bundle: str | None = None,
        parent_run_id: str | None = None,
        config: ConfigLike | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        iteration_interval: int = 10,
        loss_transform: Callable[[Any], Any] = default_loss_transform,
        checkpoint_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        weights_path: str | os.PathLike | None = None,
        output_dir: str | os.PathLike | None = None,
        sqlite_timeout_s: float = 0.2,
        retry_interval_s: float = 5.0,
        final_flush_timeout_s: float = 10.0,
        max_param_length: int = 500,
        max_params: int = 1000,
        mark_stale_runs: bool = True,
    ) -> None:
        if int(iteration_interval) < 1:
            raise ValueError(f"iteration_interval must be >= 1, got {iteration_interval}")
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.bundle = bundle
        self.parent_run_id = parent_run_id
        self.config = config
        self.params = dict(params or {})
        self.tags = dict(tags or {})
        self.iteration_interval = int(iteration_interval)
        self.loss_transform = loss_transform
        if checkpoint_path is None:
            self.checkpoint_paths: list[Path] = []
        elif isinstance(checkpoint_path, (str, os.PathLike)):
            self.checkpoint_paths = [Path(checkpoint_path)]
        else:
            self.checkpoint_paths = [Path(p) for p in checkpoint_path]
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.sqlite_timeout_s = float(sqlite_timeout_s)
        self.retry_interval_s = float(retry_interval_s)
        self.final_flush_timeout_s = float(final_flush_timeout_s)
        self.max_param_length = int(max_param_length)
        self.max_params = int(max_params)
        self.mark_stale_runs = bool(mark_stale_runs)
        self.experiment_id: str | None = None
        self.resolved_uri: str | None = None
        self._writer: BufferedMlflowWriter | None = None
        self._ended = False
        self._trainer: Engine | None = None
        self._evaluators: list[Engine] = []
        self._early_artifacts: list[tuple[str, str | None]] = []
        self._epoch_sums: dict[str, float] = collections.defaultdict(float)
        self._epoch_counts: dict[str, int] = collections.defaultdict(int)

    # ------------------------------------------------------------------ properties
    @property
    def run_id(self) -> str | None:
        """Id of this job's run once created (``None`` before start or while the store is down)."""
        return self._writer.run_id if self._writer is not None else None

    @property
    def active_run_name(self) -> str | None:
        """Name of this job's run once started."""
        return self._writer.run_name if self._writer is not None else None

    @property
    def trainer_epoch(self) -> int | None:
        """The attached trainer's current epoch, the step of validation metrics and images."""
        return self._trainer.state.epoch if self._trainer is not None else None

    def _out_dir(self) -> Path:
        if self.output_dir is None:
            self.output_dir = Path(tempfile.mkdtemp(prefix="radlas_mlflow_"))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return self.output_dir

    # ------------------------------------------------------------------ attaching
    def attach(self, engine: Engine, role: str | None = None) -> None:
        """Register on ``engine`` as trainer or evaluator.

        Args:
            engine: an ignite/MONAI engine.
            role: ``"trainer"`` or ``"evaluator"``; ``None`` detects it (a MONAI ``Evaluator`` is an
                evaluator, anything else a trainer).

        Raises:
            ValueError: unknown ``role``.
        """
        from ignite.engine import Events

        role = engine_role(engine, role)
        if role == "trainer":
            self._trainer = engine
            engine.add_event_handler(Events.STARTED, self.start)
            engine.add_event_handler(Events.STARTED, self._register_epoch_handler, self.epoch_completed)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
            engine.add_event_handler(Events.COMPLETED, self.completed)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self.exception_raised)
        else:
            self._evaluators.append(engine)
            engine.add_event_handler(Events.STARTED, self.start)
            engine.add_event_handler(Events.STARTED, self._register_epoch_handler, self.validation_completed)
            engine.add_event_handler(Events.COMPLETED, self._evaluator_completed)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self._evaluator_exception)

    @staticmethod
    def _register_epoch_handler(engine: Engine, handler: Callable[[Engine], None]) -> None:
        """Register ``handler`` at EPOCH_COMPLETED when the run starts, i.e. after every handler
        attached at construction (metrics, validation, LR schedule), so it sees their results."""
        from ignite.engine import Events

        if not engine.has_event_handler(handler, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, handler)

    # ------------------------------------------------------------------ lifecycle
    def start(self, engine: Engine | None = None) -> None:
        """Prepare the store and create this job's run (idempotent while the run is open).

        Raises:
            TrackingStoreError: the store cannot be opened at all (fails the job at start).
        """
        if self._writer is not None and not self._ended:
            return
        from mlflow import MlflowClient

        self.resolved_uri = resolve_tracking_uri(self.tracking_uri)
        self.experiment_id = prepare_tracking_store(self.resolved_uri, self.experiment_name)
        client = MlflowClient(tracking_uri=self.resolved_uri)
        set_sqlite_busy_timeout(client, int(self.sqlite_timeout_s * 1000))
        run_tags = {**owner_tags(), **{k: str(v) for k, v in self.tags.items()}}
        if self.bundle:
            run_tags[TAG_BUNDLE] = self.bundle
        if self.parent_run_id:
            run_tags[TAG_PARENT_RUN] = self.parent_run_id
        self._writer = BufferedMlflowWriter(
            client,
            self.experiment_id,
            self.run_name or unique_run_name(self.experiment_name),
            run_tags,
            retry_interval_s=self.retry_interval_s,
        )
        self._ended = False
        if self.mark_stale_runs:
            self._writer.guarded("mark stale runs", mark_stale_runs_failed, client, self.experiment_id)
        self._log_config()
        trainer_state = getattr(self._trainer, "state", None)
        engine_params = {k: getattr(trainer_state, k, None) for k in ("max_epochs", "epoch_length")}
        self._writer.log_params({f"engine.{k}": v for k, v in engine_params.items() if v is not None})
        for local_path, artifact_path in self._early_artifacts:
            self._writer.log_artifact(local_path, artifact_path)
        self._early_artifacts.clear()
        self._writer.flush(force=True)

    def _log_config(self) -> None:
        config, files = load_config(self.config)
        params = (
            flatten_params({**config, **self.params}, self.max_param_length, self.max_params)
            if (config or self.params)
            else {}
        )
        self._writer.log_params(params)
        for path in files:
            self._writer.log_artifact(path, "config")
        if config and not files:
            path = self._out_dir() / f"config_{self._writer.run_name}.json"
            path.write_text(json.dumps(config, indent=2, default=str))
            self._writer.log_artifact(path, "config")

    def iteration_completed(self, engine: Engine) -> None:
        """Accumulate the loss terms; log them (and the learning rate) every ``iteration_interval``."""
        if self._writer is None:
            return
        terms = self.loss_transform(engine.state.output)
        if terms is None:
            return
        if not isinstance(terms, Mapping):
            terms = {"loss": terms}
        terms = {str(k): as_float(v) for k, v in terms.items() if is_scalar(v)}
        for key, value in terms.items():
            self._epoch_sums[key] += value
            self._epoch_counts[key] += 1
        if engine.state.iteration % self.iteration_interval:
            return
        metrics = {f"train/{k}": v for k, v in terms.items()}
        optimizer = getattr(engine, "optimizer", None)
        for index, group in enumerate(getattr(optimizer, "param_groups", [])):
            if "lr" in group:
                metrics["train/lr" if index == 0 else f"train/lr_group{index}"] = float(group["lr"])
        self._writer.log_metrics(metrics, step=engine.state.iteration)

    def epoch_completed(self, engine: Engine) -> None:
        """Log epoch means of the loss terms and the trainer's metrics; flush the buffer."""
        if self._writer is None:
            return
        metrics = {f"train_epoch/{k}": self._epoch_sums[k] / self._epoch_counts[k] for k in self._epoch_sums}
        metrics.update(metric_scalars("train/", engine.state.metrics or {}))
        self._epoch_sums.clear()
        self._epoch_counts.clear()
        self._writer.log_metrics(metrics, step=engine.state.epoch, flush=False)
        self._writer.flush(force=True)

    def validation_completed(self, engine: Engine) -> None:
        """Log the evaluator's metrics at the trainer's epoch; flush the buffer."""
        if self._writer is None:
            return
        in_training = self._trainer is not None
        step = self.trainer_epoch if in_training and self.trainer_epoch else engine.state.epoch
        metrics = metric_scalars("val/" if in_training else "eval/", engine.state.metrics or {})
        self._writer.log_metrics(metrics, step=int(step or 0), flush=False)
        self._writer.flush(force=True)

    def completed(self, engine: Engine | None = None) -> None:
        """Log the checkpoint(s) and end the run ``FINISHED``."""
        if self._writer is None or self._ended:
            return
        self._log_checkpoints()
        self.finish("FINISHED")

    def exception_raised(self, engine: Engine, error: BaseException) -> None:
        """End the run ``FAILED`` (``KILLED`` for ``KeyboardInterrupt``) and re-raise ``error``."""
        if self._writer is not None and not self._ended:
            self._writer.set_tags({TAG_FAILURE_REASON: f"{type(error).__name__}: {error}"[:1000]})
            self.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise error

    def _evaluator_completed(self, engine: Engine) -> None:
        if self._trainer is None:  # standalone evaluation: the evaluator owns the run
            self.completed(engine)

    def _evaluator_exception(self, engine: Engine, error: BaseException) -> None:
        if self._trainer is None:
            self.exception_raised(engine, error)
        raise error  # inside training, the trainer's EXCEPTION_RAISED ends the run

    def finish(self, status: str = "FINISHED") -> None:
        """Flush (retrying up to ``final_flush_timeout_s``) and end the run with ``status``.

        Whatever cannot be written is dumped to ``<output_dir>/mlflow_unflushed_<run name>.json``
        with a warning naming the file.
        """
        if self._writer is None or self._ended:
            return
        self._ended = True
        flushed = self._writer.flush_until(self.final_flush_timeout_s)
        terminated = flushed and self._writer.terminate(status)
        if flushed and not terminated:
            terminated = self._writer.flush_until(1.0) and self._writer.terminate(status)
        if not terminated:
            path = self._out_dir() / f"mlflow_unflushed_{self._writer.run_name}.json"
            self._writer.dump_pending(path, status)
            logger.warning(
                "MLflow store unreachable at the end of run %r: status %s and %s unflushed entries saved to %s",
                self._writer.run_name,
                status,
                self._writer.pending,
                path,
            )
        else:
            logger.info("MLflow run %r (%s) ended %s", self._writer.run_name, self._writer.run_id, status)

    # ------------------------------------------------------------------ artifacts
    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Log a local file into the run (buffered like everything else)."""
        if self._writer is None:
            self._early_artifacts.append((os.fspath(local_path), artifact_path))
            return
        self._writer.log_artifact(local_path, artifact_path)
        self._writer.flush()

    def log_image(self, image: Any, name: str, step: int | None = None) -> Path:
        """Log an image under ``images/``, e.g. a panel rendered by another handler.

        Args:
            image: a PNG file path, or an array/tensor of shape (H, W), (1|3|4, H, W) or (H, W, 3|4);
                floats in [0, 1] (other ranges are stretched), or uint8.
            name: file stem (``<name>_step<step>.png`` when ``step`` is given).
            step: the epoch or iteration the image belongs to.

        Returns:
            the local PNG path that is logged.

        Raises:
            ValueError: the array does not have an image shape.
        """
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
        else:
            from PIL import Image

            stem = f"{name}_step{int(step):06d}" if step is not None else name
            path = self._out_dir() / "images" / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image_to_uint8(image)).save(path)
        self.log_artifact(path, "images")
        return path

    def _downstream_weights(self, existing: list[Path]) -> Path | None:
        """The file whose digest is the ``radlas.checkpoint_sha256`` tag (see ``weights_path``)."""
        if self.weights_path is not None:
            if self.weights_path.is_file():
                return self.weights_path
            logger.warning("weights file %s not found at the end of the run; no checkpoint digest", self.weights_path)
            return None
        if self.checkpoint_paths:
            from radlas_monai.handlers.checkpoint import MODEL_FILENAME

            sibling = self.checkpoint_paths[0].parent / MODEL_FILENAME
            if sibling.is_file():
                return sibling
        return existing[0] if existing else None

    def _log_checkpoints(self) -> None:
        existing = [p for p in self.checkpoint_paths if p.is_file()]
        missing = [str(p) for p in self.checkpoint_paths if not p.is_file()]
        if missing:
            logger.warning("checkpoint file(s) %s not found at the end of the run; not logged", missing)
        weights = self._downstream_weights(existing)
        if weights is None:
            return
        from radlas_monai.handlers.checkpoint_io import file_sha256

        self._writer.set_tags({TAG_CHECKPOINT_SHA256: file_sha256(weights)})
        logged = {p.resolve() for p in existing}
        for path in [*existing, *([weights] if weights.resolve() not in logged else [])]:
            self._writer.log_artifact(path, "checkpoints")
