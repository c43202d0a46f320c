"""The evaluation benchmark's arithmetic: the expensive metrics' time is paid once, the rest per image; and
the module books every part it runs."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch import nn

from ganmex.explain.methods import GradXInput
from ganmex.metrics.references import ZeroReference
from ganmex.pipeline.evaluation_bench import (
    F_FORWARD,
    F_GRADIENT,
    EvaluationTiming,
    FPassCost,
    count_f_images,
    f_pass_cost,
)
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


def _gini_plan() -> EvaluationPlan:
    return EvaluationPlan(
        methods={"grad_x_input": GradXInput()},
        baselines={},
        metric_configs=OmegaConf.create({"sparsity": {"_target_": "ganmex.metrics.evaluation.GiniMetric"}}),
        references={"zero": ZeroReference()},
        curve_references=["zero"],
    )


def test_the_module_books_explaining_and_each_metric():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    module = EvaluationModule(model, _gini_plan())
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


def test_the_bound_counts_every_image_through_f_by_kind_of_pass():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    module = EvaluationModule(model, _gini_plan())
    handle = count_f_images(module)
    module.test_step((torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long), torch.arange(5)), 0)
    handle.remove()
    # the pairs' selection scores the 5 images, grad x input explains them with one forward and backward
    assert module.timings[F_FORWARD] == 5 and module.timings[F_GRADIENT] == 5
    module.timings.clear()
    module.test_step((torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long), torch.arange(5)), 1)
    assert F_FORWARD not in module.timings  # removed: nothing counted any more


def test_the_bound_is_the_counted_passes_at_their_own_cost():
    timing = EvaluationTiming(
        images=10, seconds=5.0, cpu_seconds=10.0, workers=2, f_images={F_FORWARD: 5000, F_GRADIENT: 1000}
    )
    cost = FPassCost(forward_s=1e-3, gradient_s=3e-3)
    assert cost.bound_s(timing) == (5000 * 1e-3 + 1000 * 3e-3) / 10  # 0.8 CPU s per image
    (line,) = cost.lines(timing)
    assert "500 images forward only and 100 forward and backward per test image" in line
    assert "0.800 CPU s per image, 80% of this run's" in line
    # 10 CPU s in 5 s of wall time: 2 busy cores, each 1 / 0.8 images/s at the bound
    assert "cannot come faster than 2.500 images/s on this run's 2.00 busy cores" in line


def test_timing_f_alone_keeps_the_torch_threads():
    threads = torch.get_num_threads()
    cost = f_pass_cost(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), (1, 4, 4))
    assert cost.forward_s > 0 and cost.gradient_s > 0
    assert torch.get_num_threads() == threads
