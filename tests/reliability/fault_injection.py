"""Test-only fault injection for the distributed case (issue 9, case 7): one rank exits or hangs mid-epoch.

Wired into a bundle run by an extra config file on the documented command line (``--config_file
"['train.json', 'multi_gpu_train.json', 'fault.json']"``, see test_distributed_faults.py), with this folder on
``PYTHONPATH``; nothing in the package knows about it. The fault fires only in torchrun's first attempt
(``TORCHELASTIC_RESTART_COUNT == 0``), so a restarted job runs clean.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from ignite.engine import Engine, Events

logger = logging.getLogger(__name__)


class RankFault:
    """Make ``rank`` exit (``action="exit"``) or hang forever (``action="hang"``) at the start of an iteration.

    Args:
        rank: this process's rank (``$torch.distributed.get_rank()``).
        fault_rank: the rank that fails.
        epoch: the epoch (1-based) of the fault.
        iteration: the iteration within that epoch (1-based) at whose start the fault fires.
        action: ``"exit"`` (``os._exit(exit_code)``, like a crashed or OOM-killed worker) or ``"hang"``.
        stamp: a file written (with ``time.time()``) when the fault fires.
        exit_code: exit status of ``"exit"``.
    """

    def __init__(
        self,
        rank: int,
        fault_rank: int = 1,
        epoch: int = 2,
        iteration: int = 2,
        action: str = "exit",
        stamp: str = "",
        exit_code: int = 17,
    ) -> None:
        if action not in ("exit", "hang"):
            raise ValueError(f"action must be 'exit' or 'hang', got {action!r}")
        self.rank, self.fault_rank, self.epoch, self.iteration = int(rank), int(fault_rank), int(epoch), int(iteration)
        self.action, self.stamp, self.exit_code = action, stamp, int(exit_code)

    def attach(self, engine: Engine) -> None:
        """Fire at ``ITERATION_STARTED`` of the chosen epoch and iteration (first torchrun attempt only)."""
        engine.add_event_handler(Events.ITERATION_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        in_epoch = (engine.state.iteration - 1) % engine.state.epoch_length + 1
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if not (first_attempt and self.rank == self.fault_rank):
            return
        if engine.state.epoch != self.epoch or in_epoch != self.iteration:
            return
        if self.stamp:
            Path(self.stamp).write_text(repr(time.time()))
        print(f"fault injection: rank {self.rank} {self.action}s at epoch {self.epoch}", file=sys.stderr, flush=True)
        if self.action == "exit":
            os._exit(self.exit_code)
        while True:  # a hung rank: never reaches the next collective
            time.sleep(3600)
