"""GAN training throughput: GanmexModule under Lightning vs a plain PyTorch loop, same nets and batch.

Both do the same work per batch (one WGAN-GP critic step, one generator step with adversarial,
classifier CE, similarity and reconstruction terms against a frozen mnist_cnn). Rounds alternate
Lightning / plain so load changes on a shared machine hit both alike; the medians are compared.

    python scripts/bench_gan.py [--batches 20 --warmup 3 --rounds 3 --batch-size 20 --threads 1]

`--variant NAME:KEY=VALUE[,KEY=VALUE...]` (repeatable) also times the Lightning loop with those
overrides of conf/gan/stargan.yaml (e.g. `gp4:loss.gp_every=4`), in the same alternating rounds, and
reports each variant's speed relative to the YAML as it is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from ganmex.models.classifiers import mnist_cnn
from ganmex.models.stargan import from_gan, to_gan
from ganmex.training.gan_losses import critic_wasserstein_loss, generator_adversarial_loss, gradient_penalty
from ganmex.training.ganmex import GanmexModule

CONFIG = "conf/gan/stargan.yaml"


class Timer(L.Callback):
    """Wall and CPU time from the start of batch `warmup` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.cpu_start = None
        self.wall = self.cpu = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer, pl_module):
        self.wall, self.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu_start


def make_parts(cfg, seed: int = 0):
    torch.manual_seed(seed)
    shape = {"channels": 1, "num_classes": 10, "image_size": 28}
    generator, critic = instantiate(cfg.generator, **shape), instantiate(cfg.critic, **shape)
    classifier = mnist_cnn(1, 10, 28, [0.1307], [0.3081]).eval().requires_grad_(False)
    return generator, critic, classifier


def lightning_run(cfg, data, batches: int, warmup: int) -> tuple[float, float]:
    generator, critic, classifier = make_parts(cfg)
    loss = OmegaConf.to_container(cfg.loss)
    module = GanmexModule(
        generator, critic, classifier, 10, instantiate(cfg.g_optimizer), instantiate(cfg.d_optimizer), **loss
    )
    timer = Timer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * (warmup + batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, DataLoader(data, batch_size=cfg.batch_size))
    return timer.wall, timer.cpu


def plain_run(cfg, data, batches: int, warmup: int) -> tuple[float, float]:
    generator, critic, classifier = make_parts(cfg)
    lam = cfg.loss
    g_opt = instantiate(cfg.g_optimizer)(params=generator.parameters())
    d_opt = instantiate(cfg.d_optimizer)(params=critic.parameters())
    generator.train(), critic.train()
    start = cpu_start = None
    for i, (images, source) in enumerate(DataLoader(data, batch_size=cfg.batch_size)):
        if i == warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        if i == warmup + batches:
            break
        real = to_gan(images)
        target = torch.randint(0, 10, source.shape)
        with torch.no_grad():
            fake = generator(real, target)
        d_loss = critic_wasserstein_loss(critic(real), critic(fake)) + lam.lambda_gp * gradient_penalty(
            critic, real, fake
        )
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        fake = generator(real, target)
        g_loss = (
            generator_adversarial_loss(critic(fake))
            + lam.lambda_cls * F.cross_entropy(classifier(from_gan(fake)), target)
            + lam.lambda_sim * (fake - real).abs().mean()
            + lam.lambda_rec * (generator(fake, source) - real).abs().mean()
        )
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
    return time.perf_counter() - start, time.process_time() - cpu_start


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'gp4:loss.gp_every=4,loss.lambda_sim=35' -> ('gp4', ['loss.gp_every=4', 'loss.lambda_sim=35'])."""
    name, sep, overrides = text.partition(":")
    pairs = [item for item in overrides.split(",") if item]
    if not sep or not name or not pairs or any("=" not in item for item in pairs):
        raise SystemExit(
            f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...], e.g. gp4:loss.gp_every=4"
        )
    return name, pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=20, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: gan.batch_size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE[,...] (repeatable)")
    args = parser.parse_args()
    variants = dict(parse_variant(text) for text in args.variant)
    torch.set_num_threads(args.threads)
    cfg = OmegaConf.load(CONFIG)
    if args.batch_size:
        cfg.batch_size = args.batch_size
    n = cfg.batch_size * (args.warmup + args.batches)
    data = TensorDataset(torch.rand(n, 1, 28, 28), torch.arange(n) % 10)
    variant_cfgs = {
        name: OmegaConf.merge(cfg, OmegaConf.from_dotlist(pairs)) for name, pairs in variants.items()
    }
    variant_rates: dict[str, list[float]] = {name: [] for name in variants}
    lightning_rates, plain_rates, lightning_cpu, plain_cpu = [], [], [], []
    for _ in range(args.rounds):
        for name, variant_cfg in variant_cfgs.items():
            wall, _cpu = lightning_run(variant_cfg, data, args.batches, args.warmup)
            variant_rates[name].append(args.batches * cfg.batch_size / wall)
        wall, cpu = lightning_run(cfg, data, args.batches, args.warmup)
        lightning_rates.append(args.batches * cfg.batch_size / wall)
        lightning_cpu.append(args.batches * cfg.batch_size / cpu)
        wall, cpu = plain_run(cfg, data, args.batches, args.warmup)
        plain_rates.append(args.batches * cfg.batch_size / wall)
        plain_cpu.append(args.batches * cfg.batch_size / cpu)
    result = {
        "batch_size": cfg.batch_size,
        "batches": args.batches,
        "rounds": args.rounds,
        "threads": args.threads,
        "lightning_img_per_s": statistics.median(lightning_rates),
        "plain_img_per_s": statistics.median(plain_rates),
        "lightning_img_per_cpu_s": statistics.median(lightning_cpu),
        "plain_img_per_cpu_s": statistics.median(plain_cpu),
        "lightning_all": lightning_rates,
        "plain_all": plain_rates,
    }
    result["lightning_slowdown_wall"] = 1 - result["lightning_img_per_s"] / result["plain_img_per_s"]
    result["lightning_slowdown_cpu"] = 1 - result["lightning_img_per_cpu_s"] / result["plain_img_per_cpu_s"]
    for name, rates in variant_rates.items():
        result[f"variant_{name}_img_per_s"] = statistics.median(rates)
        result[f"variant_{name}_speedup"] = statistics.median(rates) / result["lightning_img_per_s"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
