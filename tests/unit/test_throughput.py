"""scripts/bench_gan.py times the real GanmexModule the gan stage trains, not a copy of its losses."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ganmex.training.ganmex import GanmexModule
from ganmex.training.throughput import gan_throughput, module_of

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "gan" / "stargan.yaml"


def test_the_benchmark_times_the_configured_ganmex_module():
    gan = OmegaConf.load(CONFIG)
    gan.batch_size = 4
    module = module_of(gan)
    assert isinstance(module, GanmexModule) and module.lambda_sim == gan.loss.lambda_sim
    result = gan_throughput(gan, {"gp4": ["loss.gp_every=4"]}, batches=1, warmup=1, rounds=1)
    assert result["img_per_s"] > 0 and result["variant_gp4_img_per_s"] > 0
    assert result["variant_gp4_speedup"] == result["variant_gp4_img_per_s"] / result["img_per_s"]
