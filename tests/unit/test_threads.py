"""The thread governor: threads from the cores other processes leave free."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganmex.training.threads import (
    PROC_STAT,
    CpuSample,
    ThreadGovernor,
    busy_elsewhere,
    children_cpu_seconds,
    free_threads,
    read_cpu_sample,
)

linux_only = pytest.mark.skipif(not PROC_STAT.exists(), reason="needs Linux /proc/stat")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_busy_elsewhere_takes_this_process_out():
    # 10 s of wall time, 15 busy core-seconds on the machine, 6 of them ours: others kept 0.9 cores busy
    before, after = CpuSample(100.0, 500.0, 20.0), CpuSample(110.0, 515.0, 26.0)
    assert busy_elsewhere(before, after) == pytest.approx(0.9)
    assert busy_elsewhere(after, after) == 0.0


@pytest.mark.parametrize(
    ("others", "cores", "expected"),
    [(0.0, 2, 2), (0.2, 2, 2), (0.3, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (1.0, 8, 7), (2.6, 8, 5), (0.0, 1, 1)],
)
def test_free_threads_gives_every_busy_core_away(others, cores, expected):
    assert free_threads(others, cores, tolerance=0.25) == expected


class FakeLoad:
    """A clock that moves one second per reading of it, and CpuSamples whose other-process load the test
    sets."""

    def __init__(self) -> None:
        self.clock, self.busy, self.others = 0.0, 0.0, 0.0

    def tick(self) -> float:
        self.clock += 1.0
        self.busy += self.others + 1.0  # this process keeps one core busy
        return self.clock

    def __call__(self) -> CpuSample:
        return CpuSample(self.clock, self.busy, self.clock)


def test_governor_follows_the_load_of_other_processes(restore_threads):
    torch.set_num_threads(2)
    load = FakeLoad()
    governor = ThreadGovernor(interval_s=3.0, max_threads=2, sample=load, clock=load.tick)
    governor.ceiling = 2  # as on a 2-core machine, whatever this one has
    governor.on_fit_start(None, None)
    load.others = 1.0
    assert governor.update() == 1  # the first reading comes after one second
    assert torch.get_num_threads() == 1
    load.others = 0.0
    assert governor.update() is None  # within interval_s: no new reading
    governor.update()
    assert governor.update() == 2
    assert torch.get_num_threads() == 2


def test_governor_switched_off_leaves_threads_alone(restore_threads):
    torch.set_num_threads(2)
    load = FakeLoad()
    governor = ThreadGovernor(interval_s=1.0, enabled=False, sample=load, clock=load.tick)
    governor.on_fit_start(None, None)
    load.others = 2.0
    assert governor.update() is None
    assert torch.get_num_threads() == 2


def test_governor_without_proc_stat_does_nothing(restore_threads):
    governor = ThreadGovernor(sample=lambda: None)
    governor.on_fit_start(None, None)
    assert governor.update() is None


@pytest.mark.parametrize(("key", "value"), [("interval_s", 0), ("max_threads", 0)])
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"callbacks.threads.{key}={value}"):
        ThreadGovernor(**{key: value})


def _cpu_seconds_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@linux_only
def test_a_real_sample_counts_a_busy_child_as_ours():
    """A spinning child (a DataLoader worker, say) is this job's load, not another process's."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        start, child_start = read_cpu_sample(), _cpu_seconds_of(child.pid)
        deadline = time.monotonic() + 30
        while _cpu_seconds_of(child.pid) - child_start < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        end, child_end = read_cpu_sample(), _cpu_seconds_of(child.pid)
        in_children = children_cpu_seconds(os.sysconf("SC_CLK_TCK"))
    finally:
        child.kill()
        child.wait()
    assert child_end - child_start >= 0.3
    assert in_children >= child_end - 0.05
    assert end.own - start.own >= child_end - child_start - 0.05


def test_every_stage_trainer_gets_the_governor():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="train")
    governor = instantiate(cfg.callbacks.threads)
    assert isinstance(governor, ThreadGovernor)
    assert governor.enabled and governor.interval_s == cfg.callbacks.threads.interval_s


def test_niced_processes_do_not_take_threads_from_a_normal_priority_job(tmp_path):
    """Time in /proc/stat's nice column belongs to processes that yield to this one; guest time is
    already inside user time. Columns: user nice system idle iowait irq softirq steal guest guest_nice."""
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 50 20 1000 10 3 2 5 40 7\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    sample = read_cpu_sample(stat)
    ticks = os.sysconf("SC_CLK_TCK")
    if os.getpriority(os.PRIO_PROCESS, 0) > 0:
        pytest.skip("this test process runs niced, so the nice column counts for it")
    assert sample.busy == pytest.approx((100 + 20 + 3 + 2 + 5) / ticks)
