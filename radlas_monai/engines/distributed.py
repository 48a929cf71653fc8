"""Process-group set-up for the bundles' ``multi_gpu_train.json``: an explicit timeout, and torchrun restarts that work.

Under ``torchrun --max-restarts=N`` the restarted workers reuse the launcher's key-value store. With the plain
``env://`` initialisation the default process group of the new attempt finds the *previous* attempt's gloo
addresses in that store and waits for ranks that no longer exist, so a restarted job never starts. Here each attempt
(``TORCHELASTIC_RESTART_COUNT``) gets its own key prefix. The timeout bounds every collective, so a hung rank fails
the job instead of blocking it forever (it also bounds how far apart the ranks may start).
"""

from __future__ import annotations

import datetime
import logging
import os

import torch
import torch.distributed as dist

__all__ = ["init_process_group", "default_backend"]

logger = logging.getLogger(__name__)


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"`` (CPU)."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_process_group(timeout_minutes: float = 30.0, backend: str | None = None) -> bool:
    """Initialise the default process group from torchrun's environment, once.

    Args:
        timeout_minutes: process-group timeout: a collective (or the start-up handshake) waiting longer fails.
        backend: ``"gloo"``, ``"nccl"``, ...; ``None``: :func:`default_backend`.

    Returns:
        ``True`` when this call initialised the group, ``False`` when it already was.

    Raises:
        ValueError: a non-positive timeout.
        KeyError: torchrun's ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT`` are missing under torchrun.
    """
    if dist.is_initialized():
        return False
    if not timeout_minutes > 0:
        raise ValueError(f"timeout_minutes must be positive, got {timeout_minutes}")
    timeout = datetime.timedelta(minutes=float(timeout_minutes))
    backend = backend or default_backend()
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        dist.init_process_group(backend=backend, timeout=timeout)
    else:
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        agent_store = dist.TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, False, timeout=timeout
        )
        store = dist.PrefixStore(f"radlas/attempt_{attempt}", agent_store)
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    logger.info(
        "process group: %s, rank %d of %d, timeout %s, torchrun attempt %s",
        backend,
        dist.get_rank(),
        dist.get_world_size(),
        timeout,
        attempt or "0",
    )
    return True
