"""Wall-clock timing for the benchmarks: the best of repeats (least disturbed by other jobs), and a GPU
synchronised before reading the clock (kernels run asynchronously)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def synchronise(device: str | torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures it."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed_call(fn: Callable[..., Any], *args: Any, device: str | torch.device = "cpu") -> tuple[float, Any]:
    """(wall seconds of one call `fn(*args)`, its result)."""
    synchronise(device)
    start = time.perf_counter()
    out = fn(*args)
    synchronise(device)
    return time.perf_counter() - start, out


def seconds(fn: Callable[..., Any], *args: Any, device: str | torch.device = "cpu") -> float:
    """Wall seconds of one call `fn(*args)`."""
    return timed_call(fn, *args, device=device)[0]


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(the fastest of `repeats` calls in seconds, the last call's result)."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1 (calls to time)")
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out
