"""Resume an interrupted training run exactly where it stopped.

Two handlers, both attached to the trainer:

- :class:`ResumeFromCheckpoint` restores, at ``STARTED``, the network, optimizer, LR scheduler,
  AMP scaler, the saver's best-metric record and the trainer's epoch/iteration from
  ``checkpoint_last.pt`` (written by :class:`~radlas_monai.handlers.checkpoint.AtomicCheckpointSaver`)
  when ``resume=True`` and the file exists; ignite then continues with the next epoch. The engine's
  own ``max_epochs`` is kept (so a run can be extended), as MONAI's ``CheckpointLoader`` does.
- :class:`DeterministicEpochs` makes every epoch's randomness a pure function of ``(seed, epoch)``.

**Decision: data order is a pure function of (seed, epoch)**, not a snapshot of RNG states.
A snapshot taken at the end of epoch k misses every draw made after it and before epoch k + 1
starts (a validation DataLoader's worker seed, a handler that samples), so it silently breaks as
handlers are added. Instead, at each ``EPOCH_STARTED``, :class:`DeterministicEpochs` derives
``epoch_data_seed(seed, epoch)`` and re-seeds (1) the training DataLoader's ``generator`` and its
sampler's (shuffling order, worker base seeds), (2) the dataset's MONAI ``Randomizable``
transforms (:func:`seed_randomizables`, as ``monai.data.utils.set_rnd`` does; with workers,
MONAI's ``worker_init_fn`` then derives per-worker seeds from the re-seeded generator), and, with
``reseed_global_rng=True`` (default), (3) the global ``torch``/``numpy``/``random`` generators
used by dropout and by samplers without a generator, the way ignite's ``DeterministicEngine``
does. Epoch k + 1 then sees the same randomness whether the job ran straight through or was killed
after epoch k and resumed, so the final weights are identical (``torch.equal``) on CPU. This
handler is the one place where RadLAS library code seeds the global generators, on purpose and
only when attached.

Limits: resuming from a *mid-epoch* checkpoint (``save_interval_iterations``) continues that epoch
with the first batches of the epoch's order rather than the unseen ones, so it is safe but not
bitwise identical; persistent DataLoader workers (``persistent_workers=True``) keep their first
seeds and are not re-seeded; GPU kernels may add their own non-determinism.

Example (bundle JSON, ``train#handlers``)::

    {"_target_": "radlas_monai.engines.resume.ResumeFromCheckpoint", "resume": "@resume",
     "checkpoint_dir": "@ckpt_dir", "network": "@network", "optimizer": "@optimizer",
     "lr_scheduler": "@lr_scheduler", "saver": "@checkpoint_saver"},
    {"_target_": "radlas_monai.engines.resume.DeterministicEpochs", "seed": "@seed"}
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from radlas_monai.handlers.checkpoint import LAST_FILENAME, AtomicCheckpointSaver
from radlas_monai.handlers.checkpoint_io import CheckpointError, load_checkpoint, load_network_state

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["ResumeFromCheckpoint", "DeterministicEpochs", "epoch_data_seed", "seed_randomizables"]

_MAX_SEED = 2**32

logger = logging.getLogger(__name__)


def epoch_data_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed for ``epoch`` of a run seeded with ``seed`` (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint32)[0])


def seed_randomizables(obj: Any, seed: int, _seen: set[int] | None = None) -> int:
    """Seed every MONAI ``Randomizable`` reachable from ``obj`` (dataset -> transform -> Compose -> ...).

    Follows ``monai.data.utils.set_rnd`` (each randomizable gets the next seed, in attribute order)
    without importing ``monai.data``, and guards against reference cycles.

    Args:
        obj: a dataset, transform, list of them, ...
        seed: the first seed.

    Returns:
        the next unused seed.
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, np.ndarray, torch.Tensor)):
        return seed
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            seed = seed_randomizables(item, seed, seen)
        return seed
    if callable(getattr(obj, "set_random_state", None)) and not isinstance(obj, type):
        obj.set_random_state(seed=seed % _MAX_SEED)
        return seed + 1
    for key, value in getattr(obj, "__dict__", {}).items():
        if not key.startswith("__"):
            seed = seed_randomizables(value, seed, seen)
    return seed


class ResumeFromCheckpoint:
    """Restore the full training state from ``checkpoint_last.pt`` at ``STARTED``.

    Args:
        checkpoint_dir: the saver's ``save_dir``, or the path of a checkpoint file.
        network: network to restore (strict: a wrong architecture raises
            :class:`~radlas_monai.handlers.checkpoint_io.StateDictMismatchError` naming the keys).
        optimizer: optimizer to restore, if any.
        lr_scheduler: LR scheduler to restore, if any.
        scaler: AMP scaler; ``None`` uses the trainer's ``scaler`` attribute if any.
        saver: the :class:`AtomicCheckpointSaver` whose best-metric record is restored, if any.
        resume: ``False`` makes the handler a no-op (the bundle's ``resume`` switch).
        map_location: passed to ``torch.load``.

    Attributes:
        resumed_from: the file restored, or ``None``.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any | None = None,
        scaler: Any | None = None,
        saver: AtomicCheckpointSaver | None = None,
        resume: bool = True,
        map_location: Any = "cpu",
    ) -> None:
        path = Path(checkpoint_dir)
        self.path = path if path.suffix in (".pt", ".pth") else path / LAST_FILENAME
        self.network = network
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.scaler = scaler
        self.saver = saver
        self.resume = bool(resume)
        self.map_location = map_location
        self.resumed_from: Path | None = None

    def attach(self, engine: Engine) -> None:
        """Restore at ``STARTED`` of the trainer ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Restore everything into the objects and ``engine.state``.

        Raises:
            CheckpointError: the file is unreadable, lacks ``network``/``trainer``, or a part does
                not load into its object.
            ValueError: the checkpoint's epoch is beyond the engine's ``max_epochs``.
        """
        if not self.resume:
            return
        if not self.path.exists():
            logger.info("resume requested but %s does not exist; starting from scratch", self.path)
            return
        checkpoint = load_checkpoint(self.path, expected_keys=("network", "trainer"), map_location=self.map_location)
        load_network_state(self.network, checkpoint["network"], strict=True, path=self.path)
        scaler = self.scaler if self.scaler is not None else getattr(engine, "scaler", None)
        for key, obj in (("optimizer", self.optimizer), ("lr_scheduler", self.lr_scheduler), ("scaler", scaler)):
            if obj is None:
                continue
            if key not in checkpoint:
                logger.warning("%s has no %r state; %s keeps its initial state", self.path, key, type(obj).__name__)
                continue
            try:
                obj.load_state_dict(checkpoint[key])
            except (KeyError, ValueError, RuntimeError, TypeError) as err:
                raise CheckpointError(self.path, f"{key} state does not load into {type(obj).__name__}: {err}") from err
        if self.saver is not None and isinstance(checkpoint.get("saver"), Mapping):
            self.saver.load_state_dict(checkpoint["saver"])
        self._restore_trainer(engine, checkpoint["trainer"])
        self.resumed_from = self.path
        logger.info("resumed from %s at epoch %d, iteration %d", self.path, engine.state.epoch, engine.state.iteration)

    def _restore_trainer(self, engine: Engine, trainer_state: Mapping[str, Any]) -> None:
        """Set epoch/iteration like MONAI's CheckpointLoader: keep the engine's own max_epochs."""
        max_epochs = engine.state.max_epochs
        saved_length = trainer_state.get("epoch_length")
        current_length = engine.state.epoch_length or saved_length
        iteration = int(trainer_state.get("iteration", 0))
        if saved_length and current_length and saved_length != current_length:
            epoch = iteration // saved_length
            logger.warning(
                "epoch length changed from %d to %d since %s was saved; resuming at the start of epoch %d",
                saved_length,
                current_length,
                self.path,
                epoch + 1,
            )
            iteration = epoch * current_length
        epoch = iteration // current_length if current_length else 0
        if max_epochs is not None and epoch > max_epochs:
            raise ValueError(
                f"{self.path} is at epoch {epoch}, beyond this run's max_epochs={max_epochs}; "
                "raise max_epochs to continue training, or set resume=False to start over"
            )
        engine.state.epoch_length = current_length
        engine.state.iteration = iteration
        engine.state.epoch = epoch
        if max_epochs is not None and epoch == max_epochs:
            logger.info("%s is already at max_epochs=%d; nothing left to train", self.path, max_epochs)


class DeterministicEpochs:
    """Re-seed the epoch's randomness from ``(seed, epoch)`` at every ``EPOCH_STARTED``.

    See the module docstring for what is re-seeded and why this makes resume exact.

    Args:
        seed: the run's seed.
        data_loader: the training DataLoader; ``None`` uses the engine's ``data_loader``
            attribute (MONAI trainers) or ``engine.state.dataloader``.
        reseed_global_rng: also seed the global ``torch``, ``numpy`` and ``random`` generators
            (dropout, samplers without a generator).
        randomizables: further MONAI ``Randomizable`` objects outside the dataset to re-seed, e.g. the
            lesion synthesizer that the training iteration runs on the device.
        rank: the process rank in distributed training; ``randomizables`` get a different seed per
            rank, so ranks do not draw the same lesions.
    """

    def __init__(
        self,
        seed: int = 0,
        data_loader: Any | None = None,
        reseed_global_rng: bool = True,
        randomizables: Any | None = None,
        rank: int = 0,
    ) -> None:
        self.seed = int(seed)
        self.data_loader = data_loader
        self.reseed_global_rng = bool(reseed_global_rng)
        self.randomizables = randomizables
        self.rank = int(rank)
        self._warned_partial = False

    def attach(self, engine: Engine) -> None:
        """Re-seed at every ``EPOCH_STARTED`` of the trainer ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Seed everything for ``engine.state.epoch``."""
        seed = epoch_data_seed(self.seed, engine.state.epoch)
        loader = self.data_loader
        for candidate in (getattr(engine, "data_loader", None), engine.state.dataloader):
            loader = candidate if loader is None else loader
        self._drop_finished_iterator(engine, loader)
        generators = {id(g): g for g in (getattr(loader, "generator", None), _sampler_generator(loader))}
        for generator in generators.values():
            if isinstance(generator, torch.Generator):
                generator.manual_seed(seed)
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(engine.state.epoch)
        dataset = getattr(loader, "dataset", None)
        if dataset is not None:
            seed_randomizables(dataset, seed)
        if self.randomizables is not None:
            seed_randomizables(self.randomizables, epoch_data_seed(self.seed + self.rank, engine.state.epoch) ^ 0x5EED)
        if self.reseed_global_rng:
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)

    def _drop_finished_iterator(self, engine: Engine, loader: Any) -> None:
        """Make ignite open a fresh DataLoader iterator for this epoch, as it does in a run's first epoch.

        Ignite keeps the previous epoch's iterator and only replaces it when ``next()`` raises
        ``StopIteration`` inside the new epoch; a ``RandomSampler`` draws one more permutation from
        the (just re-seeded) generator while being exhausted there, so a straight run and a resumed
        run would see different orders. Dropping it here (ignite's ``_dataloader_iter``, which
        ignite itself resets between runs) removes that difference. Only done when epochs cover
        whole passes over the loader (``epoch_length`` a multiple of ``len(loader)``), so no batch is
        ever skipped; otherwise exact resume is not guaranteed and this is logged once.
        """
        if getattr(engine, "_dataloader_iter", None) is None:
            return
        try:
            passes, remainder = divmod(int(engine.state.epoch_length), len(loader))
        except (TypeError, ValueError, ZeroDivisionError):
            passes, remainder = 0, 1
        if passes >= 1 and remainder == 0:
            engine._dataloader_iter = None
        elif not self._warned_partial:
            self._warned_partial = True
            logger.warning(
                "epoch_length=%s is not a multiple of the loader's %s batches: epochs do not start at a fresh "
                "pass, so a resumed run may not repeat an uninterrupted one exactly",
                engine.state.epoch_length,
                getattr(loader, "__len__", lambda: "?")(),
            )


def _sampler_generator(loader: Any) -> Any:
    sampler = getattr(loader, "sampler", None)
    generator = getattr(sampler, "generator", None)
    if generator is None:
        generator = getattr(getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None)
    return generator
