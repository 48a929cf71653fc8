"""Tests of radlas_monai.benchmarking.memory: the peak of a short-lived allocation is seen, by both CPU methods."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from radlas_monai.benchmarking import memory
from radlas_monai.benchmarking.memory import PeakMemory, measure_peak_memory, read_status_kib

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS is read from Linux /proc")

MIB = 1024 * 1024


def _touch_and_free(mib: int, hold_s: float = 0.0) -> None:
    block = np.ones(mib * MIB, dtype=np.uint8)  # written, so resident
    time.sleep(hold_s)
    del block


def test_read_status_field():
    assert read_status_kib("VmRSS") > 0
    assert read_status_kib("NoSuchField") is None


@pytest.mark.parametrize("reset_allowed, method", [(True, "vmhwm"), (False, "vmrss-sampling")])
def test_peak_of_freed_allocation_is_measured(monkeypatch, reset_allowed, method):
    if reset_allowed and not memory._reset_high_water_mark():
        pytest.skip("this kernel does not allow resetting VmHWM")
    if not reset_allowed:
        monkeypatch.setattr(memory, "_reset_high_water_mark", lambda: False)
    with PeakMemory("cpu") as meter:
        _touch_and_free(96, hold_s=0.05)  # freed before the block ends: only a peak measurement sees it
    result = meter.result
    assert result.method == method
    assert 80 <= result.increase_mib <= 200
    assert result.peak_mib == pytest.approx(result.baseline_mib + result.increase_mib)


def test_measure_peak_memory_builds_and_runs():
    calls = []

    def build():
        weights = np.ones(48 * MIB, dtype=np.uint8)
        return lambda: calls.append(int(weights[0]))

    result = measure_peak_memory(build, calls=3)
    assert calls == [1, 1, 1]
    assert result.increase_mib >= 40
