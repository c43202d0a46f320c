"""scripts/bench_gan.py times the real GanmexModule the gan stage trains, not a copy of its losses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ganmex.training.ganmex import GanmexModule, ganmex_module_from_config
from ganmex.training.throughput import MNIST, cpu_hog, gan_throughput, module_of, network_seconds

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "gan" / "stargan.yaml"


def small_gan():
    gan = OmegaConf.load(CONFIG)
    gan.batch_size = 4
    return gan


def test_the_benchmark_builds_the_gan_stages_module():
    """Every setting the stage passes (losses, EMA, learning-rate decay) reaches the timed module."""
    gan = small_gan()
    gan.ema_decay = 0.99
    module = module_of(gan)
    staged = ganmex_module_from_config(gan, MNIST, module.classifier)
    assert isinstance(module, GanmexModule)
    for key in ("lambda_sim", "gp_every", "cls_dropout_worst_of", "ema_decay", "lr_decay_from"):
        assert getattr(module, key) == getattr(staged, key)
    assert module.generator_ema is not None


def test_variants_alternate_and_report_speed_against_the_bound():
    result = gan_throughput(small_gan(), {"gp4": ["loss.gp_every=4"]}, batches=1, warmup=1, rounds=2)
    base, gp4 = result["rows"]["config"], result["rows"]["gp4"]
    assert base["min"] <= base["img_per_s"] <= base["max"]
    assert gp4["speedup"] == pytest.approx(gp4["img_per_s"] / base["img_per_s"])
    assert base["share_of_bound"] == pytest.approx(base["img_per_s"] / base["bound_img_per_s"])


def test_the_bound_times_every_network_pass():
    gan = small_gan()
    every = network_seconds(gan, repeats=1)
    assert set(every) == {"generator", "critic", "gradient_penalty", "critic_on_fakes", "classifier"}
    assert all(seconds > 0 for seconds in every.values())


def test_the_busy_benchmarks_other_job_is_not_this_process_s_child():
    """The governor counts children (DataLoader workers) as this job's load: the stand-in for another
    user's job must not be one, or the benchmark would measure a governor that sees nothing."""
    with cpu_hog() as pid:
        children = {int(p) for f in Path("/proc/self/task").glob("*/children") for p in f.read_text().split()}
        assert Path(f"/proc/{pid}").exists()
        assert pid not in children
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_text()
