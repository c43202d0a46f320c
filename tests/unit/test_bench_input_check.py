"""The input-check benchmark (scripts/bench_input_check.py) times three things and reports their ratio."""

from __future__ import annotations

from ganmex.bench.input_check import InputCheckCost, input_check_cost


def test_summary_reports_microseconds_and_the_share_of_the_forward():
    cost = InputCheckCost(checked=0.00105, raw=0.001, check=0.00002)
    assert cost.summary() == (
        "median forward with check 1050 us, without 1000 us, check alone 20.0 us = 2.00% of the forward"
    )


def test_every_timing_is_measured():
    cost = input_check_cost(batch=2, warmup=1, rounds=1)
    assert cost.checked > 0 and cost.raw > 0 and cost.check > 0
