"""The evaluation's worker processes (ganmex/pipeline/evaluation_workers.py) on a stand-in module: results
merged in one process's order whatever order they finish in, the first pairs' expensive budgets, a failing
or killed worker as one line, and SIGTERM ending the run and its workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import torch
from torch.utils.data import TensorDataset

from ganmex.errors import ConfigError, WorkerError
from ganmex.pipeline.evaluation_module import BatchWork, MetricState
from ganmex.pipeline.evaluation_workers import evaluate_in_workers, plan_units, resolve_workers
from ganmex.termination import Terminated, sigterm_raises

IMAGES, BATCH = 10, 4  # batches of 4, 4 and 2 images


@dataclass
class Plan:
    expensive_images: int = 5


@dataclass
class StandIn:
    """The part of EvaluationModule the workers use; `run_unit` records (batch, unit, budget), the first
    units of a batch sleeping longest so that they finish last."""

    behaviour: str = "ok"
    plan: Plan = field(default_factory=Plan)
    timings: Counter = field(default_factory=Counter)
    merged: list = field(default_factory=list)
    done: list = field(default_factory=list)

    def prepare(self, batch, index: int) -> BatchWork:
        return BatchWork(index, {"x": batch[0]})

    def units(self) -> list[tuple[str, str]]:
        return [("m0", "b"), ("m1", "b"), ("m2", "b")]

    def run_unit(self, work: BatchWork, method: str, baseline: str, budget: int) -> None:
        if self.behaviour == "hang":
            time.sleep(60)
        if self.behaviour == "fail" and (work.index, method) == (1, "m1"):
            raise ValueError("no such pixel")
        if self.behaviour == "die" and (work.index, method) == (1, "m1"):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.05 * (2 - int(method[1])))
        self.done.append((work.index, method, budget, len(work)))
        self.timings["explain"] += 1.0

    def take_states(self) -> dict[str, MetricState]:
        states = {"k": MetricState(("metric", "m", "b", None), {"values": list(self.done)}, len(self.done))}
        self.done.clear()
        return states

    def merge_states(self, states) -> None:
        self.merged += states["k"].state["values"]


def _images() -> TensorDataset:
    return TensorDataset(torch.arange(IMAGES, dtype=torch.float32))


def test_results_are_merged_in_one_process_order_with_the_first_pairs_budgets():
    module, results = StandIn(), []
    evaluate_in_workers(module, _images(), BATCH, workers=2, on_result=results.append)
    expected = [
        (batch, f"m{u}", budget, size)
        for batch, budget, size in ((0, 4, 4), (1, 1, 4), (2, 0, 2))
        for u in range(3)
    ]
    assert module.merged == expected
    assert len({r.pid for r in results}) == 2 and os.getpid() not in {r.pid for r in results}
    assert sum(r.timings["explain"] for r in results) == 9


def test_plan_units_counts_the_expensive_pairs_once():
    units = plan_units(StandIn(plan=Plan(expensive_images=6)), _images(), BATCH)
    assert [(u.batch, u.budget) for u in units[::3]] == [(0, 4), (1, 2), (2, 0)]


def test_a_failing_unit_is_one_line_naming_it():
    with pytest.raises(WorkerError) as failed:
        evaluate_in_workers(StandIn("fail"), _images(), BATCH, workers=2)
    assert str(failed.value).startswith(
        "evaluation worker failed on batch 2, m1 x b: ValueError: no such pixel"
    )
    assert "\n" not in str(failed.value)
    assert not multiprocessing.active_children()


def test_a_killed_worker_is_one_line_not_a_hang():
    with pytest.raises(WorkerError, match=r"^an evaluation worker died while batch \d+ was being scored"):
        evaluate_in_workers(StandIn("die"), _images(), BATCH, workers=2)
    assert not multiprocessing.active_children()


def test_sigterm_ends_the_run_and_its_workers():
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    start = time.monotonic()
    with sigterm_raises(), pytest.raises(Terminated):
        timer.start()
        evaluate_in_workers(StandIn("hang"), _images(), BATCH, workers=2)
    assert time.monotonic() - start < 30
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("setting", [0, -1, 1.5, "two", True])
def test_bad_worker_counts_are_named(setting):
    with pytest.raises(ConfigError, match=rf"evaluation.workers={setting!r} must be"):
        resolve_workers(setting, "cpu")


def test_worker_counts():
    assert resolve_workers(3, "cpu") == 3
    assert resolve_workers("auto", "cuda") == 1
    assert 1 <= resolve_workers("auto", "cpu") <= len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match="on cuda use evaluation.workers=1"):
        resolve_workers(2, "cuda")
