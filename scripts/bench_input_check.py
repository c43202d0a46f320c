"""Overhead of the Classifier.forward input check: mnist_cnn, batch 64, 1 thread, eval, no_grad."""

import time

import torch

from ganmex.models.classifiers import mnist_cnn
from ganmex.models.inputs import as_pixels, forward_tolerance

torch.set_num_threads(1)
net = mnist_cnn(1, 10, 28, [0.13], [0.31]).eval()
x = torch.rand(64, 1, 28, 28)
checked, raw, alone = [], [], []
with torch.no_grad():
    for _ in range(30):
        net(x)
    for _ in range(40):  # interleaved, so machine load hits both equally
        t = time.perf_counter()
        [net(x) for _ in range(20)]
        checked.append((time.perf_counter() - t) / 20)
        t = time.perf_counter()
        [net.head(net.features(x)) for _ in range(20)]
        raw.append((time.perf_counter() - t) / 20)
        t = time.perf_counter()
        [as_pixels(x, tolerance=forward_tolerance()) for _ in range(200)]
        alone.append((time.perf_counter() - t) / 200)


def med(v: list[float]) -> float:
    return sorted(v)[len(v) // 2]


print(
    f"median forward with check {med(checked) * 1e6:.0f} us, without {med(raw) * 1e6:.0f} us, "
    f"check alone {med(alone) * 1e6:.1f} us = {100 * med(alone) / med(raw):.2f}% of the forward"
)
