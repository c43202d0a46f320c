"""CPU threads from the cores other processes leave free, re-read while a stage runs.

PyTorch starts one OpenMP thread per core, and those threads spin while they wait for each other. Beside
one other CPU-bound process on 2 cores that turns a 1.45x speed-up into a 3.7x slow-down: the thread that
lost its core holds up every parallel region. `ThreadGovernor` samples how much CPU the *other* processes
use (`/proc/stat` minus this process's own CPU time) every `interval_s` seconds and sets
`torch.set_num_threads` to the cores they leave free; niced processes, which yield to it, do not count.
Where `/proc/stat` does not exist it does nothing.
Config: conf/callbacks/threads.yaml; measured in docs/benchmarks.md (busy machine).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

log = logging.getLogger(__name__)
PROC_STAT = Path("/proc/stat")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal guest guest_nice. Idle and iowait
# are not busy; guest time is already inside user and nice
NOT_BUSY_FIELDS = (3, 4, 8, 9)
# niced processes (nice > 0) yield to a job at normal priority, so their time only counts for a niced job
NICE_FIELD = 1
# /proc/<pid>/stat after the ")" closing the command name: state is field 0, utime 11, stime 12
UTIME_FIELD = 11
# the first reading of a loop comes after this long, so a busy machine is seen within its first second
FIRST_WINDOW_S = 1.0


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a SLURM or taskset allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide busy CPU seconds and this process's own CPU seconds at one wall-clock instant."""

    wall: float
    busy: float
    own: float


def read_cpu_sample(stat: Path = PROC_STAT) -> CpuSample | None:
    """A sample now, or None where the kernel has no /proc/stat (macOS, Windows)."""
    try:
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    ignored = NOT_BUSY_FIELDS if os.getpriority(os.PRIO_PROCESS, 0) > 0 else (*NOT_BUSY_FIELDS, NICE_FIELD)
    busy = sum(v for i, v in enumerate(fields) if i not in ignored)
    return CpuSample(time.monotonic(), busy / ticks, time.process_time() + children_cpu_seconds(ticks))


def children_cpu_seconds(ticks: int) -> float:
    """CPU seconds of this process's live children (DataLoader workers are ours, not another job's)."""
    total = 0
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the child has exited since the list was read
            total += int(fields[UTIME_FIELD]) + int(fields[UTIME_FIELD + 1])
    return total / ticks


def busy_elsewhere(before: CpuSample, after: CpuSample) -> float:
    """Cores kept busy by other processes between two samples (this process's CPU time taken out)."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    return max(0.0, ((after.busy - before.busy) - (after.own - before.own)) / wall)


def free_threads(others: float, cores: int, tolerance: float) -> int:
    """Threads for this process: the cores minus every core another process keeps busier than
    `tolerance` (a daemon's blips do not cost a thread), never fewer than 1."""
    taken = math.ceil(max(0.0, others - tolerance))
    return max(1, min(cores, cores - taken))


class ThreadGovernor(L.Callback):
    """Set torch's thread count from the free cores at the start of every loop and every `interval_s`.

    `max_threads`: the ceiling (null: the threads torch had when the run started, which OMP_NUM_THREADS or
    `torch.set_num_threads` may have lowered); `tolerance`: the load of other processes, in cores, that
    does not take a thread away; `enabled: false` leaves torch's threads alone."""

    def __init__(
        self,
        interval_s: float = 5.0,
        tolerance: float = 0.25,
        max_threads: int | None = None,
        enabled: bool = True,
        sample: Callable[[], CpuSample | None] = read_cpu_sample,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"callbacks.threads.interval_s={interval_s} must be > 0 seconds")
        if max_threads is not None and max_threads < 1:
            raise ValueError(f"callbacks.threads.max_threads={max_threads} must be >= 1 or null")
        self.interval_s = interval_s
        self.tolerance = tolerance
        self.ceiling = min(max_threads or torch.get_num_threads(), usable_cores())
        self.enabled = enabled
        self._sample = sample
        self._clock = clock
        self._last: CpuSample | None = None
        self._window = interval_s

    def update(self) -> int | None:
        """Re-read the load and set the thread count; the count now, or None when there is no reading.
        Between readings it only reads the clock: it runs after every batch."""
        if not self.enabled:
            return None
        if self._last is None:
            self._start()
            return None
        if self._clock() - self._last.wall < self._window:
            return None
        now = self._sample()
        if now is None:
            return None
        others = busy_elsewhere(self._last, now)
        self._last, self._window = now, self.interval_s
        threads = free_threads(others, self.ceiling, self.tolerance)
        if threads != torch.get_num_threads():
            log.info(
                "CPU threads %d -> %d: other processes keep %.1f of %d cores busy",
                torch.get_num_threads(),
                threads,
                others,
                usable_cores(),
            )
            torch.set_num_threads(threads)
        return threads

    def _start(self) -> None:
        """A first sample, read again after at most FIRST_WINDOW_S: a busy machine is seen at once."""
        self._last, self._window = self._sample(), min(self.interval_s, FIRST_WINDOW_S)

    def _tick(self, *_args, **_kwargs) -> None:
        self.update()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.training:  # inside fit the fit's own samples go on
            self._start()

    on_train_batch_end = _tick
    on_validation_batch_end = _tick
    on_test_batch_end = _tick
