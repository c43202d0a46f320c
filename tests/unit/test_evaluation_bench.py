"""The evaluation benchmark's arithmetic: the expensive metrics' time is paid once, the rest per image; and
the module books every part it runs."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch import nn

from ganmex.explain.methods import GradXInput
from ganmex.metrics.references import ZeroReference
from ganmex.pipeline.evaluation_bench import EvaluationTiming
from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan


def test_the_split_estimate_pays_the_one_off_part_once():
    # 10 images: 50 CPU-s in the expensive metrics' first pairs, 20 CPU-s for the rest (2 s per image)
    timing = EvaluationTiming(
        images=10, seconds=140.0, by_part={"sanity": 50.0, "deletion": 20.0}, one_off=50.0, cpu_seconds=70.0
    )
    assert timing.per_image_s == 2.0
    assert timing.estimate_s(10_000) == 50.0 + 2.0 * 10_000  # not 7 s per image x 10,000
    lines = timing.lines(10_000)
    assert "estimated time for 10,000 images: 5:34:10 of CPU" in lines[-1]
    assert "| sanity | 50.0 | 71.4% |" in lines


def test_the_module_books_explaining_and_each_metric():
    plan = EvaluationPlan(
        methods={"grad_x_input": GradXInput()},
        baselines={},
        metric_configs=OmegaConf.create({"sparsity": {"_target_": "ganmex.metrics.evaluation.GiniMetric"}}),
        references={"zero": ZeroReference()},
        curve_references=["zero"],
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    module = EvaluationModule(model, plan)
    ticks = iter(range(100))
    module.clock = lambda: float(next(ticks))  # every reading one second later
    module.test_step((torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), torch.arange(2)), 0)
    assert module.timings == {"explain": 1.0, "sparsity": 1.0}


def test_the_wall_estimate_follows_the_run_parallelism():
    # 2 workers: 70 CPU-s in 35 s of wall time, so the split takes half its CPU time in wall time
    timing = EvaluationTiming(
        images=10, seconds=35.0, by_part={"sanity": 50.0}, one_off=50.0, cpu_seconds=70.0, workers=2
    )
    assert timing.estimate_wall_s(10_000) == (50.0 + 2.0 * 10_000) / 2
