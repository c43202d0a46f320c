"""What the input check of `Classifier.forward` costs: the checked forward, the same network without the
check, and the check alone, interleaved so that machine load hits all three alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ganmex.bench.inputs import MNIST_CHANNELS, MNIST_SIZE, untrained_mnist_cnn
from ganmex.models.inputs import as_pixels, forward_tolerance

BATCH, WARMUP, ROUNDS = 64, 30, 40
# calls per timed block: a forward is long enough to time in blocks of 20, the check alone needs 200
FORWARDS_PER_BLOCK, CHECKS_PER_BLOCK = 20, 200
MICROSECONDS = 1e6


@dataclass(frozen=True)
class InputCheckCost:
    """Median seconds of the checked forward, the unchecked forward and the check alone."""

    checked: float
    raw: float
    check: float

    def summary(self) -> str:
        return (
            f"median forward with check {self.checked * MICROSECONDS:.0f} us, without "
            f"{self.raw * MICROSECONDS:.0f} us, check alone {self.check * MICROSECONDS:.1f} us = "
            f"{100 * self.check / self.raw:.2f}% of the forward"
        )


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def input_check_cost(batch: int = BATCH, warmup: int = WARMUP, rounds: int = ROUNDS) -> InputCheckCost:
    """Time mnist_cnn (eval, no_grad) on `batch` random images, `rounds` interleaved rounds after `warmup`."""
    net = untrained_mnist_cnn()
    x = torch.rand(batch, MNIST_CHANNELS, MNIST_SIZE, MNIST_SIZE)
    checked, raw, alone = [], [], []
    with torch.no_grad():
        for _ in range(warmup):
            net(x)
        for _ in range(rounds):
            checked.append(_per_call(lambda: net(x), FORWARDS_PER_BLOCK))
            raw.append(_per_call(lambda: net.head(net.features(x)), FORWARDS_PER_BLOCK))
            alone.append(_per_call(lambda: as_pixels(x, tolerance=forward_tolerance()), CHECKS_PER_BLOCK))
    return InputCheckCost(statistics.median(checked), statistics.median(raw), statistics.median(alone))
