"""Crash-safe checkpoints for RadLAS training (replaces MONAI's ``CheckpointSaver`` in the bundles).

MONAI's ``CheckpointSaver`` (through ignite's ``Checkpoint``) deletes the previous file before it
writes the next one, non-atomically: a job killed mid-save with ``n_saved=1`` has no valid
checkpoint left. :class:`AtomicCheckpointSaver` writes every file with
:func:`~radlas_monai.handlers.checkpoint_io.atomic_torch_save` instead, so a SIGKILL at any moment
leaves the previous file intact.

Files in ``save_dir`` (the bundles use ``<output_dir>/models`` or ``<bundle_root>/models``):

====================  ======================================================================
``checkpoint_last.pt``  full training state after every ``save_interval_epochs`` epochs (and every
                        ``save_interval_iterations`` iterations if > 0) and at completion; what
                        :class:`~radlas_monai.engines.resume.ResumeFromCheckpoint` resumes from
``checkpoint_best.pt``  full training state whenever ``key_metric_name`` improves
``model.pt``            the network's state dict alone (MONAI Model Zoo ``models/model.pt``
                        convention, what downstream bundles load): the best network when a key
                        metric is configured and was seen, else the final network at completion
====================  ======================================================================

A full checkpoint is ``{"network", "optimizer", "lr_scheduler", "scaler", "trainer", "saver",
"meta"}`` (absent parts omitted): state dicts, the ignite trainer's ``state_dict()`` (epoch
length, iteration, max epochs), the saver's best-metric record, and ``meta`` = format, config
hash, preset, package versions, epoch, iteration, key metric, save time. Only tensors and plain
types are stored, so every file loads with ``torch.load(path, weights_only=True)``.

Attach the same saver to the trainer and, for ``checkpoint_best.pt``, to the validation evaluator
(a MONAI ``Evaluator`` is detected; pass ``role`` for plain ignite engines). The key metric is read
from the evaluator's ``engine.state.metrics`` (or the trainer's, if it computes it). End-of-epoch
saves are registered when the run starts, i.e. after every handler attached at construction
(LR schedule steps, validation), so ``checkpoint_last.pt`` holds the complete state of the epoch.
In distributed runs only rank 0 writes.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from radlas_monai.handlers.checkpoint_io import atomic_torch_save, remove_stale_temp_files
from radlas_monai.handlers.config_params import ConfigLike, config_hash
from radlas_monai.handlers.roles import engine_role

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["AtomicCheckpointSaver", "LAST_FILENAME", "BEST_FILENAME", "MODEL_FILENAME", "CHECKPOINT_FORMAT"]

logger = logging.getLogger(__name__)

LAST_FILENAME = "checkpoint_last.pt"
BEST_FILENAME = "checkpoint_best.pt"
MODEL_FILENAME = "model.pt"
CHECKPOINT_FORMAT = "radlas_monai.checkpoint/1"


def _package_versions() -> dict[str, str]:
    import radlas_monai

    versions = {
        "radlas_monai": radlas_monai.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    for name, dist in (("monai", "monai"), ("ignite", "pytorch-ignite"), ("numpy", "numpy")):
        try:
            versions[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _plain(value: Any) -> Any:
    """Keep tensors and plain types (what ``weights_only=True`` loads); anything else becomes its ``str``."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    for plain_type in (bool, int, float, str):  # exact types: numpy scalars and TorchVersion are subclasses
        if isinstance(value, plain_type):
            return plain_type(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    wrappers = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)
    return network.module if isinstance(network, wrappers) else network


def _is_rank0() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class AtomicCheckpointSaver:
    """Ignite handler writing ``checkpoint_last.pt``, ``checkpoint_best.pt`` and ``model.pt`` atomically.

    Args:
        save_dir: folder of the checkpoint files (created if needed).
        network: the network (a DataParallel/DDP wrapper is unwrapped before saving).
        optimizer: its optimizer, if any.
        lr_scheduler: its LR scheduler (anything with ``state_dict``), if any.
        scaler: the AMP ``GradScaler``; ``None`` uses the trainer's ``scaler`` attribute (MONAI's
            ``SupervisedTrainer`` creates it when ``amp=True``), if any.
        save_interval_epochs: write ``checkpoint_last.pt`` every this many epochs (0: never at
            epoch ends; completion still writes it).
        save_interval_iterations: also write it every this many iterations (0: off). A resume from a
            mid-epoch checkpoint continues within that epoch but is not bitwise identical to an
            uninterrupted run (see :mod:`radlas_monai.engines.resume`).
        key_metric_name: metric deciding ``checkpoint_best.pt`` (``None``: no best checkpoint).
        key_metric_mode: ``"max"`` or ``"min"``.
        config: the executed config; its hash (:func:`config_hash`) goes into ``meta``.
        preset: name of the size preset (e.g. ``"small_cpu"``, ``"vit_b"``) for ``meta``.
        meta: extra plain values for ``meta``.

    Raises:
        ValueError: bad ``key_metric_mode`` or negative intervals.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any | None = None,
        scaler: Any | None = None,
        save_interval_epochs: int = 1,
        save_interval_iterations: int = 0,
        key_metric_name: str | None = None,
        key_metric_mode: str = "max",
        config: ConfigLike | None = None,
        preset: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if key_metric_mode not in ("max", "min"):
            raise ValueError(f"key_metric_mode must be 'max' or 'min', got {key_metric_mode!r}")
        if save_interval_epochs < 0 or save_interval_iterations < 0:
            raise ValueError(
                f"intervals must be >= 0, got epochs={save_interval_epochs}, iterations={save_interval_iterations}"
            )
        self.save_dir = Path(save_dir)
        self.network = network
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.scaler = scaler
        self.save_interval_epochs = int(save_interval_epochs)
        self.save_interval_iterations = int(save_interval_iterations)
        self.key_metric_name = key_metric_name
        self.key_metric_mode = key_metric_mode
        self._static_meta = {
            "format": CHECKPOINT_FORMAT,
            "config_hash": config_hash(config) if config is not None else None,
            "preset": preset,
            "versions": _package_versions(),
            **dict(meta or {}),
        }
        self._static_meta = _plain(self._static_meta)
        self.best_metric: float | None = None
        self.best_metric_epoch: int | None = None
        self._trainer: Engine | None = None
        self._last_saved_iteration: int | None = None
        self._warned_missing_metric = False

    # ------------------------------------------------------------------ paths and state
    @property
    def last_path(self) -> Path:
        """``<save_dir>/checkpoint_last.pt``."""
        return self.save_dir / LAST_FILENAME

    @property
    def best_path(self) -> Path:
        """``<save_dir>/checkpoint_best.pt``."""
        return self.save_dir / BEST_FILENAME

    @property
    def model_path(self) -> Path:
        """``<save_dir>/model.pt``."""
        return self.save_dir / MODEL_FILENAME

    def state_dict(self) -> dict[str, Any]:
        """The best-metric record, stored in every checkpoint under ``"saver"``."""
        return {
            "key_metric_name": self.key_metric_name,
            "best_metric": self.best_metric,
            "best_metric_epoch": self.best_metric_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the best-metric record (on resume, so a worse epoch never overwrites the best)."""
        if state.get("key_metric_name") == self.key_metric_name:
            self.best_metric = state.get("best_metric")
            self.best_metric_epoch = state.get("best_metric_epoch")

    # ------------------------------------------------------------------ attaching
    def attach(self, engine: Engine, role: str | None = None) -> None:
        """Register on the trainer (last/model files) or the evaluator (best file).

        Args:
            engine: the engine.
            role: ``"trainer"`` or ``"evaluator"``; ``None`` detects it (MONAI ``Evaluator`` ->
                evaluator, anything else -> trainer).

        Raises:
            ValueError: unknown ``role``.
        """
        from ignite.engine import Events

        role = engine_role(engine, role)
        if role == "trainer":
            self._trainer = engine
            engine.add_event_handler(Events.STARTED, self._trainer_started)
            engine.add_event_handler(Events.COMPLETED, self._trainer_completed)
            if self.save_interval_iterations:
                engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        else:
            engine.add_event_handler(Events.STARTED, self._evaluator_started)

    def _trainer_started(self, engine: Engine) -> None:
        from ignite.engine import Events

        removed = remove_stale_temp_files(self.save_dir, LAST_FILENAME) + remove_stale_temp_files(
            self.save_dir, BEST_FILENAME
        )
        if removed:
            logger.info("removed %d partial checkpoint file(s) left by a killed save in %s", removed, self.save_dir)
        if not engine.has_event_handler(self._epoch_completed, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _evaluator_started(self, engine: Engine) -> None:
        from ignite.engine import Events

        if not engine.has_event_handler(self._validation_completed, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._validation_completed)

    # ------------------------------------------------------------------ events
    def _epoch_completed(self, engine: Engine) -> None:
        if self.key_metric_name and self.key_metric_name in (engine.state.metrics or {}):
            self._consider_best(engine.state.metrics[self.key_metric_name], engine)
        if self.save_interval_epochs and engine.state.epoch % self.save_interval_epochs == 0:
            self.save_last(engine)

    def _iteration_completed(self, engine: Engine) -> None:
        if engine.state.iteration % self.save_interval_iterations == 0:
            self.save_last(engine)

    def _trainer_completed(self, engine: Engine) -> None:
        if self._last_saved_iteration != engine.state.iteration:
            self.save_last(engine)
        if self.best_metric_epoch is None and _is_rank0():
            atomic_torch_save(_unwrap(self.network).state_dict(), self.model_path)
            logger.info("final network saved to %s", self.model_path)

    def _validation_completed(self, engine: Engine) -> None:
        metrics = engine.state.metrics or {}
        if not self.key_metric_name:
            return
        if self.key_metric_name not in metrics:
            if not self._warned_missing_metric:
                self._warned_missing_metric = True
                logger.warning(
                    "key metric %r not among the evaluator's metrics %s; no best checkpoint",
                    self.key_metric_name,
                    sorted(metrics),
                )
            return
        self._consider_best(metrics[self.key_metric_name], self._trainer or engine)

    # ------------------------------------------------------------------ saving
    def _consider_best(self, value: Any, trainer: Engine) -> None:
        value = float(value.item() if hasattr(value, "item") else value)
        if math.isnan(value):
            return
        better = (
            self.best_metric is None
            or (self.key_metric_mode == "max" and value > self.best_metric)
            or (self.key_metric_mode == "min" and value < self.best_metric)
        )
        if not better:
            return
        self.best_metric, self.best_metric_epoch = value, int(trainer.state.epoch or 0)
        if not _is_rank0():
            return
        atomic_torch_save(self.checkpoint(trainer), self.best_path)
        atomic_torch_save(_unwrap(self.network).state_dict(), self.model_path)
        logger.info(
            "best %s = %.6g at epoch %d saved to %s",
            self.key_metric_name,
            value,
            self.best_metric_epoch,
            self.best_path,
        )

    def checkpoint(self, trainer: Engine | None = None) -> dict[str, Any]:
        """The full checkpoint dict for the current state (see the module docstring)."""
        checkpoint: dict[str, Any] = {"network": _unwrap(self.network).state_dict()}
        scaler = self.scaler if self.scaler is not None else getattr(trainer, "scaler", None)
        for key, obj in (("optimizer", self.optimizer), ("lr_scheduler", self.lr_scheduler), ("scaler", scaler)):
            if obj is not None and hasattr(obj, "state_dict"):
                checkpoint[key] = obj.state_dict()
        state = getattr(trainer, "state", None)
        if trainer is not None and hasattr(trainer, "state_dict"):
            checkpoint["trainer"] = _plain(dict(trainer.state_dict()))
        checkpoint["saver"] = _plain(self.state_dict())
        checkpoint["meta"] = _plain(
            {
                **self._static_meta,
                "epoch": int(getattr(state, "epoch", 0) or 0),
                "iteration": int(getattr(state, "iteration", 0) or 0),
                "key_metric_name": self.key_metric_name,
                "best_metric": self.best_metric,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        return checkpoint

    def save_last(self, engine: Engine) -> Path | None:
        """Write ``checkpoint_last.pt`` for the trainer ``engine`` now (rank 0 only)."""
        self._last_saved_iteration = engine.state.iteration
        if not _is_rank0():
            return None
        path = atomic_torch_save(self.checkpoint(engine), self.last_path)
        logger.debug(
            "checkpoint saved to %s (epoch %d, iteration %d)", path, engine.state.epoch, engine.state.iteration
        )
        return path
