"""Tests for radlas_monai.handlers.checkpoint.AtomicCheckpointSaver on ignite engines."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from radlas_monai.handlers.checkpoint import CHECKPOINT_FORMAT, AtomicCheckpointSaver
from radlas_monai.handlers.checkpoint_io import load_checkpoint
from radlas_monai.handlers.config_params import config_hash

CONFIG = {"network": {"hidden": 4}, "optimizer": {"lr": 0.1}}


def _setup(scores: list[float] | None = None):
    """A tiny trainer that really trains, and an evaluator reporting ``scores[epoch - 1]``."""
    torch.manual_seed(0)
    network = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    data = [torch.full((2,), float(i)) for i in range(5)]

    def step(engine: Engine, batch: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = (network(batch) - 1.0).pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    trainer, evaluator = Engine(step), Engine(lambda engine, batch: None)
    snapshots: dict[int, dict] = {}

    @evaluator.on(Events.EPOCH_COMPLETED)
    def score(engine: Engine) -> None:
        engine.state.metrics["score"] = scores[trainer.state.epoch - 1]
        snapshots[trainer.state.epoch] = copy.deepcopy(network.state_dict())

    if scores is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0], max_epochs=1))
    return network, optimizer, scheduler, trainer, evaluator, data, snapshots


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_last_best_and_model_files(tmp_path: Path) -> None:
    network, optimizer, scheduler, trainer, evaluator, data, snapshots = _setup(scores=[0.5, 0.9, 0.7])
    saver = AtomicCheckpointSaver(
        tmp_path, network, optimizer, scheduler, key_metric_name="score", config=CONFIG, preset="tiny", meta={"a": 1}
    )
    saver.attach(trainer)
    saver.attach(evaluator, role="evaluator")
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: scheduler.step())
    trainer.run(data, max_epochs=3)

    last = load_checkpoint(saver.last_path, expected_keys=["network", "optimizer", "lr_scheduler", "trainer", "meta"])
    assert last["trainer"]["iteration"] == 15 and last["trainer"]["epoch_length"] == 5
    assert last["meta"]["epoch"] == 3 and _equal(last["network"], network.state_dict())
    assert last["lr_scheduler"]["last_epoch"] == 3  # saved after the scheduler step attached later
    assert last["meta"]["format"] == CHECKPOINT_FORMAT and last["meta"]["preset"] == "tiny"
    assert last["meta"]["config_hash"] == config_hash(CONFIG) and last["meta"]["a"] == 1
    assert {"torch", "monai", "ignite", "radlas_monai", "python"} <= set(last["meta"]["versions"])
    best = load_checkpoint(saver.best_path, expected_keys=["network", "trainer", "saver"])
    assert best["meta"]["epoch"] == 2 and best["saver"]["best_metric"] == pytest.approx(0.9)
    assert _equal(best["network"], snapshots[2])
    model = torch.load(saver.model_path, weights_only=True)
    assert _equal(model, snapshots[2])  # model.pt is the best network
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_best.pt", "checkpoint_last.pt", "model.pt"]


def test_min_mode_on_trainer_metrics(tmp_path: Path) -> None:
    network, optimizer, _, trainer, _, data, _ = _setup()
    values = iter([3.0, 1.0, 2.0])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_loss=next(values)))
    saver = AtomicCheckpointSaver(tmp_path, network, optimizer, key_metric_name="val_loss", key_metric_mode="min")
    saver.attach(trainer)
    trainer.run(data, max_epochs=3)
    assert load_checkpoint(saver.best_path)["meta"]["epoch"] == 2
    assert (saver.best_metric, saver.best_metric_epoch) == (1.0, 2)


def test_without_key_metric_model_is_final_network(tmp_path: Path) -> None:
    network, optimizer, _, trainer, _, data, _ = _setup()
    saver = AtomicCheckpointSaver(tmp_path, network, optimizer)
    saver.attach(trainer)
    trainer.run(data, max_epochs=2)
    assert not saver.best_path.exists()
    assert _equal(torch.load(saver.model_path, weights_only=True), network.state_dict())


def test_iteration_interval(tmp_path: Path) -> None:
    network, optimizer, _, trainer, _, data, _ = _setup()
    saver = AtomicCheckpointSaver(tmp_path, network, optimizer, save_interval_epochs=0, save_interval_iterations=2)
    saver.attach(trainer)
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append(load_checkpoint(saver.last_path)["meta"]["iteration"] if saver.last_path.exists() else 0),
    )
    trainer.run(data, max_epochs=1)
    assert seen == [0, 2, 2, 4, 4]
    assert load_checkpoint(saver.last_path)["trainer"]["iteration"] == 5  # completion always saves


def test_resumed_best_record_is_not_overwritten_by_worse(tmp_path: Path) -> None:
    network, optimizer, _, trainer, evaluator, data, _ = _setup(scores=[0.8])
    saver = AtomicCheckpointSaver(tmp_path, network, optimizer, key_metric_name="score")
    saver.load_state_dict({"key_metric_name": "score", "best_metric": 0.9, "best_metric_epoch": 7})
    saver.attach(trainer)
    saver.attach(evaluator, role="evaluator")
    trainer.run(data, max_epochs=1)
    assert not saver.best_path.exists() and saver.best_metric_epoch == 7


def test_partial_files_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    network, optimizer, _, trainer, _, data, _ = _setup()
    stale = tmp_path / ".checkpoint_last.pt.abc123.tmp"
    stale.write_bytes(b"partial")
    AtomicCheckpointSaver(tmp_path, network, optimizer).attach(trainer)
    trainer.run(data, max_epochs=1)
    assert not stale.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [[{"key_metric_mode": "best"}, "key_metric_mode"], [{"save_interval_iterations": -1}, "intervals"]],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AtomicCheckpointSaver(tmp_path, torch.nn.Linear(1, 1), **kwargs)
