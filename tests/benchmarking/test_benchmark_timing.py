"""Tests of radlas_monai.benchmarking.timing: interleaved rounds, medians and ratio noise."""

from __future__ import annotations

import pytest

from radlas_monai.benchmarking.timing import ratio_summary, summarize, time_interleaved, time_median


def test_interleaved_order_and_counts():
    calls = []
    runs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_interleaved(runs, repeats=3, warmup=2)
    # every warm-up first, then rounds A, B, A, B, ...
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for seconds in times.values() for t in seconds)


def test_time_median_runs_warmup_and_repeats():
    calls = []
    assert time_median(lambda: calls.append(1), repeats=4, warmup=1) >= 0
    assert len(calls) == 5


@pytest.mark.parametrize(
    "times, expected",
    [
        ([1.0, 3.0, 2.0], {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0, "spread": 1.0}),
        ([0.5], {"median_s": 0.5, "min_s": 0.5, "max_s": 0.5, "spread": 0.0}),
    ],
)
def test_summarize(times, expected):
    assert summarize(times) == pytest.approx(expected)


def test_ratio_summary_reports_per_round_range():
    # slower side: 4, 6, 10; faster side: 2, 2, 4 -> medians 6 / 2 = 3; per-round ratios 2, 3, 2.5
    result = ratio_summary([4.0, 6.0, 10.0], [2.0, 2.0, 4.0])
    assert result == pytest.approx({"ratio": 3.0, "ratio_min": 2.0, "ratio_max": 3.0})


@pytest.mark.parametrize(
    "call",
    [
        lambda: time_interleaved({}, repeats=1),
        lambda: time_interleaved({"a": lambda: None}, repeats=1, warmup=-1),
        lambda: summarize([]),
        lambda: ratio_summary([1.0], [1.0, 2.0]),
    ],
)
def test_invalid_input_raises(call):
    with pytest.raises(ValueError):
        call()
