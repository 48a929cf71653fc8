"""Timing: device synchronisation and interleaved repeats, so that every ratio is measured side by side.

On a shared machine the load drifts over seconds; timing all repeats of A and then all repeats of B puts that drift
into the ratio. :func:`time_interleaved` runs the contenders in turn (A, B, A, B, ...) after their warm-up, and
:func:`summarize` / :func:`ratio_summary` report the median with the spread that shows how noisy a number is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["synchronize", "time_median", "time_interleaved", "summarize", "ratio_summary"]


def synchronize(device: str | torch.device) -> None:
    """Wait for queued work on ``device`` (CUDA kernels run asynchronously; a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_median(run: Callable[[], Any], repeats: int, device: str | torch.device = "cpu", warmup: int = 1) -> float:
    """Median wall time in seconds of ``run()`` over ``repeats`` calls, after ``warmup`` untimed calls.

    Args:
        run: the work to time.
        repeats: timed calls (at least one is made).
        device: the device ``run`` works on (synchronised around every call).
        warmup: untimed calls first (allocator, kernel selection, lazy initialisation).

    Returns:
        The median time in seconds.
    """
    return statistics.median(time_interleaved({"run": run}, repeats, device, warmup)["run"])


def time_interleaved(
    runs: Mapping[str, Callable[[], Any]], repeats: int, device: str | torch.device = "cpu", warmup: int = 1
) -> dict[str, list[float]]:
    """Time several contenders in turn: every contender's warm-up first, then rounds of one call each (A, B, A, B).

    Args:
        runs: contender name -> the work of one measured unit (a training step, a batch, a forward pass).
        repeats: timed rounds (at least one).
        device: the device the contenders work on (synchronised around every call).
        warmup: untimed calls per contender before the first round.

    Returns:
        contender name -> its ``repeats`` wall times in seconds, in round order.

    Raises:
        ValueError: when ``runs`` is empty or ``warmup`` is negative.
    """
    if not runs:
        raise ValueError("time_interleaved needs at least one contender")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for run in runs.values():
        for _ in range(warmup):
            run()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, int(repeats))):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median, minimum, maximum and relative spread ``(max - min) / median`` of wall times (seconds).

    Raises:
        ValueError: for an empty sequence.
    """
    if not times:
        raise ValueError("summarize needs at least one time")
    median = statistics.median(times)
    return {
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "spread": (max(times) - min(times)) / median if median > 0 else 0.0,
    }


def ratio_summary(slower: Sequence[float], faster: Sequence[float]) -> dict[str, float]:
    """How many times faster ``faster`` is than ``slower``, from their interleaved times.

    ``ratio`` is ``median(slower) / median(faster)``; ``ratio_min`` / ``ratio_max`` are the extremes of the per-round
    ratios ``slower[i] / faster[i]`` (the two calls of one round ran under the same load), the noise of the ratio.

    Raises:
        ValueError: when the sequences are empty or differ in length.
    """
    if not slower or len(slower) != len(faster):
        raise ValueError(f"need two equally long, non-empty time lists, got {len(slower)} and {len(faster)}")
    rounds = [s / f for s, f in zip(slower, faster) if f > 0]
    return {
        "ratio": statistics.median(slower) / statistics.median(faster),
        "ratio_min": min(rounds) if rounds else float("nan"),
        "ratio_max": max(rounds) if rounds else float("nan"),
    }
