"""GAN training throughput: the real GanmexModule under Lightning (built by the gan stage's own
`ganmex_module_from_config`, every loss term its config enables), timed from batch `warmup` on, beside its
bound: the time its networks' own forward and backward passes take in isolation. Variants of the config
run in alternating rounds, so that load changes on a shared machine hit all alike.
`scripts/bench_gan.py` is its command line."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from ganmex.data.info import DatasetInfo
from ganmex.models.classifiers import mnist_cnn
from ganmex.training.gan_losses import gradient_penalty
from ganmex.training.ganmex import GanmexModule, ganmex_module_from_config
from ganmex.training.precision import FP32, resolve_precision
from ganmex.training.threads import ThreadGovernor

MNIST = DatasetInfo("mnist", 10, 1, 28, (0.1307,), (0.3081,))
HOG_START_S = 3.0


class Timer(L.Callback):
    """Wall time from the start of batch `warmup` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = None
        self.wall = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.wall = time.perf_counter() - self.start


def module_of(gan: DictConfig, seed: int = 0) -> GanmexModule:
    """The GanmexModule the gan stage builds from a `gan` config, against an untrained mnist_cnn."""
    torch.manual_seed(seed)
    classifier = mnist_cnn(MNIST.channels, MNIST.num_classes, MNIST.image_size, MNIST.mean, MNIST.std)
    return ganmex_module_from_config(gan, MNIST, classifier.eval())


def images_per_second(gan: DictConfig, batches: int, warmup: int, governed: bool = False) -> float:
    """Training images per wall second of one run of `warmup + batches` batches; `governed` adds the
    stages' ThreadGovernor (threads from the free cores)."""
    n = gan.batch_size * (warmup + batches)
    data = TensorDataset(torch.rand(n, MNIST.channels, 28, 28), torch.arange(n) % MNIST.num_classes)
    timer = Timer(warmup)
    callbacks: list[L.Callback] = [timer, *([ThreadGovernor()] if governed else [])]
    threads = torch.get_num_threads()
    trainer = L.Trainer(
        accelerator="cpu",
        # as the stage's gan.trainer sets it
        precision=resolve_precision(gan.get("trainer", {}).get("precision", FP32), "cpu"),
        max_steps=2 * (warmup + batches),  # a critic and a generator step per batch
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=callbacks,
    )
    try:
        trainer.fit(module_of(gan), DataLoader(data, batch_size=gan.batch_size))
    finally:
        torch.set_num_threads(threads)  # the governor's choice ends with its run
    return batches * gan.batch_size / timer.wall


def network_seconds(gan: DictConfig, repeats: int = 5) -> dict[str, float]:
    """Median seconds per batch of each network's own forward and backward passes, outside the training
    loop: what a batch costs at least. G (forward and backward), the critic's step (real and fake scores
    and, on its share of steps, the gradient penalty's double backward), the critic judging G(x, t), and
    f's class-loss passes (every dropout draw)."""
    module = module_of(gan)
    real = torch.rand(gan.batch_size, MNIST.channels, 28, 28) * 2 - 1
    source = torch.arange(gan.batch_size) % MNIST.num_classes
    target = module.draw_targets(source)
    gp_share = 1.0 / module.gp_every

    def generator() -> None:
        fake, attention = module.generator.forward_with_mask(real, target)
        (fake.sum() + (attention.sum() if attention is not None else 0)).backward()

    fake = module.generator(real, target).detach()
    judged = fake.clone().requires_grad_(True)  # G(x, t) as the generator step's losses see it

    def critic() -> None:
        (module.critic(real, source).mean() - module.critic(fake, target).mean()).backward()

    def penalty() -> None:
        gradient_penalty(module.critic, real, fake).backward()

    def critic_on_fakes() -> None:
        module.critic(judged, target).mean().backward()

    def classifier() -> None:
        module._class_loss(judged, target).backward()

    parts: dict[str, Callable[[], None]] = {
        "generator": generator,
        "critic": critic,
        "gradient_penalty": penalty,
        "critic_on_fakes": critic_on_fakes,
        "classifier": classifier,
    }
    seconds = {name: _median_seconds(step, repeats) for name, step in parts.items()}
    seconds["gradient_penalty"] *= gp_share
    return seconds


def _median_seconds(step: Callable[[], None], repeats: int) -> float:
    step()  # warm-up: first-call allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gan_throughput(
    gan: DictConfig,
    variants: dict[str, list[str]],
    batches: int,
    warmup: int,
    rounds: int,
    governed: bool = False,
) -> dict:
    """Images/s of `gan` and of each variant (dotlist overrides of it): the median and min-max over
    `rounds` alternating rounds, and the bound (images/s if a batch cost only its networks' passes)."""
    configs = {
        "config": gan,
        **{n: OmegaConf.merge(gan, OmegaConf.from_dotlist(o)) for n, o in variants.items()},
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    bounds: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, cfg in configs.items():
            rates[name].append(images_per_second(cfg, batches, warmup, governed))
            bounds[name].append(cfg.batch_size / sum(network_seconds(cfg).values()))
    base = statistics.median(rates["config"])
    rows = {}
    for name, values in rates.items():
        median = statistics.median(values)
        bound = statistics.median(bounds[name])
        rows[name] = {
            "img_per_s": median,
            "min": min(values),
            "max": max(values),
            "bound_img_per_s": bound,
            "share_of_bound": median / bound,
            "speedup": median / base,
        }
    return {
        "batch_size": gan.batch_size,
        "batches": batches,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "governed": governed,
        "rows": rows,
    }


# a single-threaded CPU-bound job, as a user's other work or another run with OMP_NUM_THREADS=1 would be
CPU_HOG = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.rand(256, 256)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


@contextmanager
def cpu_hog() -> Iterator[int]:
    """Another CPU-bound process beside the block (killed at its end). It is started through a shell that
    exits at once, so it is not this process's child: the thread governor counts children (DataLoader
    workers) as this job's own load, and another user's job is not."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.run(
        ["sh", "-c", 'nohup "$0" -c "$1" >/dev/null 2>&1 & echo $!', sys.executable, CPU_HOG],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(launcher.stdout.strip())
    try:
        time.sleep(HOG_START_S)  # let it import torch and start spinning
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)


def busy_slowdown(gan: DictConfig, batches: int, warmup: int, rounds: int, governed: bool) -> dict:
    """Images/s alone and beside one CPU-bound process, alternating in rounds: the slow-down a busy
    machine costs (median quiet / median busy)."""
    quiet, busy = [], []
    for _ in range(rounds):
        quiet.append(images_per_second(gan, batches, warmup, governed))
        with cpu_hog():
            busy.append(images_per_second(gan, batches, warmup, governed))
    return {
        "threads": torch.get_num_threads(),
        "governed": governed,
        "quiet_img_per_s": statistics.median(quiet),
        "busy_img_per_s": statistics.median(busy),
        "slowdown": statistics.median(quiet) / statistics.median(busy),
        "quiet_all": quiet,
        "busy_all": busy,
    }
