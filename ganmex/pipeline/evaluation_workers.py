"""`evaluation.workers`: the evaluation's units on N forked processes, with one process's numbers.

A unit is one (method, baseline) of one test batch (or one counterfactual baseline's images of it): it
explains and scores, and nothing in it depends on another unit (the Monte-Carlo metrics draw per pair from
(seed, pair id), ROAD's noise is keyed by (seed, batch, method, baseline), the sanity check seeds each layer).
Workers take units in the order one process runs them, each with 1 torch thread (PyTorch's intra-op threads
scale poorly on these small passes, processes do not), and hand back the states of the metric instances
they updated; the parent appends them in unit order, so results.csv, the plots and the progress lines are
what one process writes. The first `expensive_images` pairs' budgets are counted in the parent first.

Workers are forked (they inherit the classifier, baselines and test images), die with the parent
(PR_SET_PDEATHSIG) and are terminated when it stops; a failing unit stops the run with one line naming it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context

import torch
from torch.utils.data import Dataset, default_collate

from ganmex.errors import ConfigError, WorkerError
from ganmex.pipeline.evaluation_module import BatchWork, EvaluationModule, MetricState
from ganmex.report.progress import Progress
from ganmex.report.records import NO_METHOD
from ganmex.training.threads import busy_elsewhere, free_threads, read_cpu_sample, usable_cores

AUTO = "auto"
# how long `auto` watches the other processes' CPU use, and how much of a core they may use for free
LOAD_WINDOW_S = 0.5
LOAD_TOLERANCE = 0.25
PR_SET_PDEATHSIG = 1  # linux/prctl.h

# what a forked worker inherits from the parent: the module, the test images, the batch size
_INHERITED: dict = {}
# a worker's current batch (its units come in batch order, so one is kept)
_CURRENT: dict = {}


@dataclass(frozen=True)
class Unit:
    """One (method, baseline) of one batch, or (NO_METHOD, counterfactual baseline); `budget` pairs of it
    feed the expensive metrics."""

    batch: int
    method: str
    baseline: str
    budget: int


@dataclass
class UnitResult:
    """What a worker hands back: the metric states of its unit, the seconds per part and its CPU seconds."""

    unit: Unit
    states: dict[str, MetricState]
    timings: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    pid: int = 0  # the worker's process id


def resolve_workers(setting: int | str | None, device: torch.device | str) -> int:
    """The number of worker processes for `evaluation.workers`: `auto` = the cores this process may use that
    other processes leave free (1 on a GPU, whose passes parallelise themselves); 1 runs in this process."""
    on_cpu = torch.device(device).type == "cpu"
    if setting in (None, AUTO):
        if not on_cpu:
            return 1
        before = read_cpu_sample()
        if before is None:  # no /proc/stat: every usable core
            return usable_cores()
        time.sleep(LOAD_WINDOW_S)
        after = read_cpu_sample()
        return free_threads(busy_elsewhere(before, after), usable_cores(), LOAD_TOLERANCE)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError(
            f"evaluation.workers={setting!r} must be a whole number >= 1 or `auto` (the free cores)"
        )
    if setting > 1 and not on_cpu:
        raise ConfigError(
            f"evaluation.workers={setting} forks CPU processes; on {device} use evaluation.workers=1"
        )
    return setting


def batch_of(dataset: Dataset, batch_size: int, index: int):
    """Test batch `index` exactly as the stage's DataLoader (no shuffling) yields it."""
    start = index * batch_size
    return default_collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def plan_units(module: EvaluationModule, dataset: Dataset, batch_size: int) -> list[Unit]:
    """Every unit of the run in one process's order. The expensive metrics see the run's first
    `expensive_images` pairs: the batches holding them are paired here to count them."""
    batches = -(-len(dataset) // batch_size)
    seen, units = 0, []
    for index in range(batches):
        budget = 0
        if seen < module.plan.expensive_images:
            work = module.prepare(batch_of(dataset, batch_size, index), index)
            budget = 0 if work is None else min(len(work), module.plan.expensive_images - seen)
            seen += budget
        units += [Unit(index, method, baseline, budget) for method, baseline in module.units()]
    return units


def _start_worker() -> None:
    """In each worker: 1 torch thread; SIGTERM ends it (not the parent's handler), Ctrl-C is the parent's
    to handle, and the parent's death sends it SIGTERM."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # not Linux: the parent's terminate() is left
        pass


def _run(unit: Unit) -> UnitResult:
    module: EvaluationModule = _INHERITED["module"]
    start = time.process_time()
    if _CURRENT.get("batch") != unit.batch:
        _CURRENT.clear()
        batch = batch_of(_INHERITED["dataset"], _INHERITED["batch_size"], unit.batch)
        _CURRENT.update(batch=unit.batch, work=module.prepare(batch, unit.batch))
    work: BatchWork | None = _CURRENT["work"]
    if work is not None:
        module.run_unit(work, unit.method, unit.baseline, unit.budget)
    timings = dict(module.timings)
    module.timings.clear()
    return UnitResult(unit, module.take_states(), timings, time.process_time() - start, os.getpid())


def evaluate_in_workers(
    module: EvaluationModule,
    dataset: Dataset,
    batch_size: int,
    workers: int,
    progress: Progress | None = None,
    on_result: Callable[[UnitResult], None] | None = None,
) -> None:
    """Run every unit of the evaluation on `workers` forked processes and merge their metric states into
    `module` in one process's order (then `module.collect()` gives its records)."""
    units = plan_units(module, dataset, batch_size)
    _INHERITED.update(module=module, dataset=dataset, batch_size=batch_size)
    executor = ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_start_worker)
    try:
        pending = {executor.submit(_run, unit): i for i, unit in enumerate(units)}
        done: dict[int, UnitResult] = {}
        merged = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                done[index] = _result(future, units[index])
                if progress is not None and units[index].method != NO_METHOD:
                    progress.advance(1, f"{units[index].method} x {units[index].baseline}: done")
            while merged in done:  # in one process's order: batch by batch, unit by unit
                result = done.pop(merged)
                module.merge_states(result.states)
                if on_result is not None:
                    on_result(result)
                merged += 1
    finally:
        _INHERITED.clear()
        for process in list(getattr(executor, "_processes", {}).values()):  # no public way to stop them
            if process.is_alive():
                process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)


def _result(future: Future, unit: Unit) -> UnitResult:
    """The unit's result, or one line naming the unit and the error (the traceback stays chained)."""
    where = f"batch {unit.batch + 1}, {unit.method} x {unit.baseline}"
    try:
        return future.result()
    except BrokenProcessPool as error:  # every unit still pending fails so: which one was running is unknown
        raise WorkerError(
            f"an evaluation worker died while batch {unit.batch + 1} was being scored (killed: out of "
            f"memory?); rerun with fewer evaluation.workers, or evaluation.workers=1 to run in this process"
        ) from error
    except Exception as error:
        raise WorkerError(
            f"evaluation worker failed on {where}: {type(error).__name__}: {error} "
            f"(evaluation.workers=1 runs it in this process with the full traceback)"
        ) from error
