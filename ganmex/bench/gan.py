"""The command line of the GAN throughput benchmark (ganmex.training.throughput): the shipped gan config
with `--set` overrides, `--variant` specs parsed into dotlists, and the busy-machine mode."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from ganmex.bench.config import CONFIG_DIR
from ganmex.training.throughput import busy_slowdown, gan_throughput
from ganmex.variants import parse_variant

GAN_CONFIG = CONFIG_DIR / "gan" / "stargan.yaml"


def bench_config(sets: Sequence[str] = ()) -> DictConfig:
    """conf/gan/stargan.yaml as it ships, with each `KEY=VALUE` of `sets` applied (to every run)."""
    bad = [item for item in sets if "=" not in item]
    if bad:
        raise ValueError(f"--set {bad[0]!r}: expected KEY=VALUE, e.g. trainer.max_steps=6000")
    return OmegaConf.merge(OmegaConf.load(GAN_CONFIG), OmegaConf.from_dotlist(list(sets)))


def run_gan_bench(
    variants: Sequence[str] = (),
    sets: Sequence[str] = (),
    batches: int = 40,
    warmup: int = 5,
    rounds: int = 3,
    busy: bool = False,
    governed: bool = True,
) -> dict:
    """gan_throughput of the shipped config and its variants, or (busy) its slow-down beside a CPU-bound
    process, with the stages' thread governor unless `governed` is False."""
    gan = bench_config(sets)
    if busy:
        return busy_slowdown(gan, batches, warmup, rounds, governed=governed)
    return gan_throughput(gan, dict(parse_variant(text) for text in variants), batches, warmup, rounds)
