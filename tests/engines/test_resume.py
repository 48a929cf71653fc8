"""Tests for radlas_monai.engines.resume: a killed and resumed run ends with the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from radlas_monai.engines.resume import DeterministicEpochs, ResumeFromCheckpoint, epoch_data_seed, seed_randomizables
from radlas_monai.handlers.checkpoint import AtomicCheckpointSaver
from radlas_monai.handlers.checkpoint_io import StateDictMismatchError

SEED = 123


class RandNoise:
    """A MONAI-style ``Randomizable`` transform: draws only from its own ``self.R``."""

    def __init__(self) -> None:
        self.R = np.random.RandomState()

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandNoise:
        self.R = np.random.RandomState(seed)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.as_tensor(self.R.normal(0.0, 0.1, tuple(x.shape)), dtype=x.dtype)


class ToyData(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x = torch.linspace(-1, 1, 24).reshape(12, 2)
        self.transform = RandNoise()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.transform(self.x[index])
        return x, x.sum(0, keepdim=True) * 0.5


class Job:
    """Everything one training process builds (fresh objects = a fresh process after a kill)."""

    def __init__(self, ckpt_dir: Path, init_seed: int, generator: bool, resume: bool, crash_at_epoch: int = 0) -> None:
        torch.manual_seed(init_seed)  # a new process starts from different weights and RNG state
        self.network = torch.nn.Sequential(
            torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
        )
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=0.01)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.7)
        loader_kwargs = {"generator": torch.Generator()} if generator else {}
        self.loader = torch.utils.data.DataLoader(ToyData(), batch_size=4, shuffle=True, **loader_kwargs)
        self.trainer = Engine(self._step)
        self.saver = AtomicCheckpointSaver(ckpt_dir, self.network, self.optimizer, self.scheduler)
        self.resumer = ResumeFromCheckpoint(
            ckpt_dir, self.network, self.optimizer, self.scheduler, saver=self.saver, resume=resume
        )
        for handler in (self.resumer, DeterministicEpochs(seed=SEED), self.saver):
            handler.attach(self.trainer)
        self.trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: self.scheduler.step())
        if crash_at_epoch:

            @self.trainer.on(Events.EPOCH_STARTED(once=crash_at_epoch))
            def crash(engine: Engine) -> None:
                raise KeyboardInterrupt("simulated kill")

    def _step(self, engine: Engine, batch: tuple) -> float:
        self.network.train()
        x, y = batch
        self.optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(self.network(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def run(self, max_epochs: int) -> Job:
        self.trainer.run(self.loader, max_epochs=max_epochs)
        return self


def _assert_same_state(a: Job, b: Job) -> None:
    for (name, x), y in zip(a.network.state_dict().items(), b.network.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    state_a, state_b = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert all(torch.equal(state_a[k]["exp_avg_sq"], state_b[k]["exp_avg_sq"]) for k in state_a)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert (a.trainer.state.epoch, a.trainer.state.iteration) == (b.trainer.state.epoch, b.trainer.state.iteration)


@pytest.mark.parametrize("generator", [True, False], ids=["loader_generator", "global_rng"])
@pytest.mark.parametrize("interruption", ["killed_in_epoch_3", "stopped_after_2"])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, generator: bool, interruption: str) -> None:
    straight = Job(tmp_path / "straight", init_seed=0, generator=generator, resume=False).run(4)

    if interruption == "killed_in_epoch_3":
        first = Job(tmp_path / "resumed", init_seed=0, generator=generator, resume=True, crash_at_epoch=3)
        with pytest.raises(KeyboardInterrupt):
            first.run(4)
    else:
        Job(tmp_path / "resumed", init_seed=0, generator=generator, resume=True).run(2)
    resumed = Job(tmp_path / "resumed", init_seed=99, generator=generator, resume=True).run(4)

    assert resumed.resumer.resumed_from == tmp_path / "resumed" / "checkpoint_last.pt"
    _assert_same_state(straight, resumed)


def test_resume_disabled_or_without_file_starts_fresh(tmp_path: Path) -> None:
    Job(tmp_path, init_seed=0, generator=True, resume=False).run(1)
    assert Job(tmp_path, init_seed=0, generator=True, resume=False).run(1).trainer.state.epoch == 1
    job = Job(tmp_path / "empty", init_seed=0, generator=True, resume=True).run(1)
    assert job.resumer.resumed_from is None and job.trainer.state.epoch == 1


def test_wrong_architecture_is_named(tmp_path: Path) -> None:
    Job(tmp_path, init_seed=0, generator=True, resume=False).run(1)
    trainer = Engine(lambda engine, batch: None)
    ResumeFromCheckpoint(tmp_path, torch.nn.Linear(2, 1)).attach(trainer)
    with pytest.raises(StateDictMismatchError, match="unexpected keys 4 \\[0.weight"):
        trainer.run([0], max_epochs=3)


def test_checkpoint_beyond_max_epochs_raises(tmp_path: Path) -> None:
    Job(tmp_path, init_seed=0, generator=True, resume=False).run(3)
    with pytest.raises(ValueError, match="epoch 3, beyond this run's max_epochs=2"):
        Job(tmp_path, init_seed=0, generator=True, resume=True).run(2)


def test_epoch_data_seed_and_seed_randomizables() -> None:
    seeds = {epoch_data_seed(SEED, e) for e in range(1, 100)}
    assert len(seeds) == 99 and epoch_data_seed(SEED, 5) == epoch_data_seed(SEED, 5) != epoch_data_seed(SEED + 1, 5)
    first, second = RandNoise(), RandNoise()
    holder = type("Holder", (), {})()
    holder.transforms = [first, {"not": "followed"}, second]
    holder.self_ref = holder  # cycles are safe
    assert seed_randomizables(holder, 10) == 12
    assert first.R.randint(1 << 30) == np.random.RandomState(10).randint(1 << 30)
    assert second.R.randint(1 << 30) == np.random.RandomState(11).randint(1 << 30)
