"""GAN training throughput: the real GanmexModule under Lightning (the module the gan stage trains, with every
loss term its config enables), timed from batch `warmup` on; variants of the config in alternating rounds
so that load changes on a shared machine hit all alike. `scripts/bench_gan.py` is its command line."""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from ganmex.models.classifiers import mnist_cnn
from ganmex.training.ganmex import GanmexModule

MNIST_SHAPE = {"channels": 1, "num_classes": 10, "image_size": 28}
MNIST_MEAN, MNIST_STD = [0.1307], [0.3081]


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
    generator, critic = instantiate(gan.generator, **MNIST_SHAPE), instantiate(gan.critic, **MNIST_SHAPE)
    classifier = mnist_cnn(1, 10, 28, MNIST_MEAN, MNIST_STD).eval().requires_grad_(False)
    optimizers = instantiate(gan.g_optimizer), instantiate(gan.d_optimizer)
    return GanmexModule(generator, critic, classifier, 10, *optimizers, **OmegaConf.to_container(gan.loss))


def images_per_second(gan: DictConfig, batches: int, warmup: int) -> float:
    """Training images per wall second of one run of `warmup + batches` batches."""
    n = gan.batch_size * (warmup + batches)
    data = TensorDataset(torch.rand(n, 1, 28, 28), torch.arange(n) % MNIST_SHAPE["num_classes"])
    timer = Timer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * (warmup + batches),  # a critic and a generator step per batch
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module_of(gan), DataLoader(data, batch_size=gan.batch_size))
    return batches * gan.batch_size / timer.wall


def gan_throughput(
    gan: DictConfig, variants: dict[str, list[str]], batches: int, warmup: int, rounds: int
) -> dict:
    """Median images/s of `gan` and of each variant (dotlist overrides of it), and each variant's speed-up."""
    configs = {
        "config": gan,
        **{n: OmegaConf.merge(gan, OmegaConf.from_dotlist(o)) for n, o in variants.items()},
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, cfg in configs.items():
            rates[name].append(images_per_second(cfg, batches, warmup))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    result = {
        "batch_size": gan.batch_size,
        "batches": batches,
        "rounds": rounds,
        "img_per_s": medians["config"],
    }
    result["all"] = rates["config"]
    for name in variants:
        result[f"variant_{name}_img_per_s"] = medians[name]
        result[f"variant_{name}_speedup"] = medians[name] / medians["config"]
    return result
