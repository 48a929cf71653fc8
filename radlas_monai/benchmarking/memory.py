"""Peak memory of one contender: process resident memory (RSS) on the CPU, the CUDA caching allocator on GPUs.

CPU method: the kernel's own high-water mark. Writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) resets
``VmHWM`` in ``/proc/self/status`` to the current RSS; after the work, ``VmHWM`` is the exact peak, with no sampling
gaps and no extra thread competing with the measured work for the cores. Where the reset is not allowed, a thread
samples ``VmRSS`` every 2 ms instead (it can miss peaks shorter than that). Before the baseline is read, Python's
garbage is collected and glibc returns freed heap pages to the system (``malloc_trim``), so memory freed by a
previous contender does not hide in the baseline. psutil is not a project dependency, hence ``/proc``.

GPU method: ``torch.cuda.reset_peak_memory_stats`` then ``torch.cuda.max_memory_allocated`` (tensor memory; the
allocator's cache and the CUDA context are not counted).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

__all__ = ["MemoryPeak", "PeakMemory", "measure_peak_memory", "read_status_kib"]

logger = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MIB = 1024 * 1024


def read_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in KiB; None where ``/proc`` is unavailable."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` from the running process's own symbols; None elsewhere (musl, macOS, Windows)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):
        return None


def _release_freed_memory() -> None:
    """Collect garbage and hand glibc's freed heap pages back to the system (only garbage collection elsewhere)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclasses.dataclass
class MemoryPeak:
    """Peak memory of the work measured by :class:`PeakMemory`, in MiB.

    Attributes:
        peak_mib: the peak (process RSS on the CPU; allocated tensor memory on a GPU).
        baseline_mib: the same quantity just before the work started.
        increase_mib: ``peak_mib - baseline_mib``: what the work itself needed at its peak.
        method: ``"vmhwm"``, ``"vmrss-sampling"``, ``"cuda-max-allocated"`` or ``"unavailable"``.
    """

    peak_mib: float
    baseline_mib: float
    increase_mib: float
    method: str


class _RSSSampler(threading.Thread):
    """Daemon thread keeping the largest ``VmRSS`` seen, every ``interval`` seconds."""

    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kib = read_status_kib("VmRSS") or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak_kib = max(self.peak_kib, read_status_kib("VmRSS") or 0)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak_kib, read_status_kib("VmRSS") or 0)


class PeakMemory:
    """Context manager: the peak memory of the work inside it (see the module docstring for the methods).

    Args:
        device: the device the work runs on; CUDA devices are measured with the CUDA allocator, others by RSS.

    Example:
        >>> with PeakMemory("cpu") as meter:
        ...     x = torch.ones(1024, 1024)
        >>> meter.result.method in ("vmhwm", "vmrss-sampling", "unavailable")
        True
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.result: MemoryPeak | None = None
        self._baseline = 0.0
        self._method = "unavailable"
        self._sampler: _RSSSampler | None = None

    def __enter__(self) -> PeakMemory:
        _release_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device) / _MIB
            self._method = "cuda-max-allocated"
            return self
        rss = read_status_kib("VmRSS")
        if rss is None:
            return self
        if _reset_high_water_mark():
            self._method = "vmhwm"
        else:
            self._method = "vmrss-sampling"
            self._sampler = _RSSSampler()
            self._sampler.start()
        self._baseline = (read_status_kib("VmRSS") or rss) / 1024
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._method == "cuda-max-allocated":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / _MIB
        elif self._method == "vmhwm":
            peak = (read_status_kib("VmHWM") or 0) / 1024
        elif self._sampler is not None:
            peak = self._sampler.stop() / 1024
        else:
            peak = 0.0
        self.result = MemoryPeak(peak, self._baseline, max(0.0, peak - self._baseline), self._method)


def measure_peak_memory(
    build: Callable[[], Callable[[], Any]], calls: int = 2, device: str | torch.device = "cpu"
) -> MemoryPeak:
    """Peak memory of building a contender and running it ``calls`` times (weights, optimizer state, activations).

    Args:
        build: makes the contender (its network, optimizer, ...) and returns the work of one measured unit.
        calls: how many units to run (two, so that lazily created state such as optimizer moments is included).
        device: where the work runs.

    Returns:
        :class:`MemoryPeak`; the contender is released afterwards.
    """
    with PeakMemory(device) as meter:
        run = build()
        for _ in range(max(1, int(calls))):
            run()
        del run
    assert meter.result is not None
    _release_freed_memory()
    return meter.result
