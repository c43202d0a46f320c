"""How fast the evaluate stage scores images, and how long the whole test split would take.

`time_evaluation` runs the stage's own `EvaluationModule.test_step` (every configured method x baseline x
metric, on the configured test images, in the configured batches) and reads the seconds the module books per
metric. The metrics marked `expensive` see only the first `evaluation.expensive_images` pairs of a run, so
their time is a one-off cost; the rest grows with the number of images. The estimate for a whole split is
therefore one-off + per-image cost x split size, not the images/s of a short run scaled up.
CEM, the attribution grid and the report files are not timed (they do not grow with `num_images`).
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader

from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan
from ganmex.pipeline.evaluation_stage import IndexedDataset, build_plan, evaluation_images
from ganmex.pipeline.evaluation_workers import evaluate_in_workers, resolve_workers
from ganmex.progress_text import format_duration

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# what the module books outside any metric
EXPLAIN = "explain"
OTHER = "other (pairs, counterfactual baselines, bookkeeping)"
DEFAULT = "default"


@dataclass
class EvaluationTiming:
    """One evaluation run: its wall seconds, and its CPU seconds in total, per part (each metric,
    explaining, the rest) and in the one-off part. The shares and the estimate use CPU seconds, which a busy
    machine's other jobs do not inflate: on an idle machine with one thread they are the wall time."""

    images: int
    seconds: float
    by_part: dict[str, float] = field(default_factory=dict)
    one_off: float = 0.0  # the expensive metrics': spent on the first `expensive_images` pairs only
    cpu_seconds: float = 0.0  # this process's and its worker processes'
    workers: int = 1  # evaluation.workers as resolved for this run

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def per_image_s(self) -> float:
        """CPU seconds per image of everything but the one-off part."""
        return (self.cpu_seconds - self.one_off) / self.images

    def estimate_s(self, split_images: int) -> float:
        """CPU seconds for `split_images` images: the one-off part once, the rest per image."""
        return self.one_off + self.per_image_s * split_images

    def estimate_wall_s(self, split_images: int) -> float:
        """Wall seconds for `split_images` images at this run's speed: the CPU estimate scaled by this run's
        wall over CPU seconds (its parallelism, and the machine's load while it ran)."""
        return self.estimate_s(split_images) * self.seconds / self.cpu_seconds

    def lines(self, split_images: int) -> list[str]:
        """The report: images/s, each part's share of the time, and the estimate for a whole split."""
        out = [
            f"{self.images} images in {self.seconds:.1f} s wall, {self.cpu_seconds:.1f} s CPU: "
            f"{self.images_per_s:.3f} images/s ({self.images / self.cpu_seconds:.3f} per CPU second)",
            "",
            "| part | CPU seconds | share |",
            "|---|---:|---:|",
        ]
        for name, seconds in sorted(self.by_part.items(), key=lambda kv: -kv[1]):
            out.append(f"| {name} | {seconds:.1f} | {100 * seconds / self.cpu_seconds:.1f}% |")
        out += [
            "",
            f"estimated time for {split_images:,} images: {format_duration(self.estimate_s(split_images))} "
            f"of CPU (one-off {self.one_off:.1f} s for the expensive metrics' first pairs, then "
            f"{self.per_image_s:.3f} s per image)",
        ]
        return out


def evaluation_config(overrides: Sequence[str]) -> DictConfig:
    """The evaluate config of conf/ with `overrides`, rooted like `python evaluate.py` (GANMEX_ROOT or the
    working directory), its run directory a temporary one: nothing is written."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.root_dir = os.environ.get("GANMEX_ROOT", os.getcwd())
        cfg.paths.output_dir = tempfile.mkdtemp(prefix="bench_evaluation_")
    return cfg


@dataclass
class PreparedEvaluation:
    """One configured evaluation, opened once (classifier, baselines, test images) and run many times."""

    context: EvalContext
    plan: EvaluationPlan
    loader: DataLoader
    workers: int | str | None = 1  # evaluation.workers (`auto` is resolved at each run)


def prepare_evaluation(cfg: DictConfig) -> PreparedEvaluation:
    context = EvalContext.open(cfg)
    plan = build_plan(cfg, context)
    plan.oracle = context.oracle()
    test = evaluation_images(cfg, context)
    loader = DataLoader(IndexedDataset(test), batch_size=cfg.evaluation.batch_size)
    return PreparedEvaluation(context, plan, loader, cfg.evaluation.get("workers"))


def time_evaluation(prepared: PreparedEvaluation) -> EvaluationTiming:
    """Run the evaluation's test steps once, as a fresh run would, and time them (module docstring): in this
    process on its torch threads, or on `evaluation.workers` processes of 1 thread each."""
    for reference in prepared.plan.references.values():  # ROAD's noise stream starts afresh
        getattr(reference, "reset", lambda: None)()
    module = EvaluationModule(prepared.context.classifier, prepared.plan)
    module.clock = time.process_time  # parts in CPU seconds: other jobs on a busy machine do not skew them
    device = prepared.context.device
    workers = resolve_workers(prepared.workers, device)
    parts: Counter[str] = Counter()
    start, cpu, children = time.perf_counter(), module.clock(), _children_cpu()
    if workers > 1:
        loader = prepared.loader
        evaluate_in_workers(
            module, loader.dataset, loader.batch_size, workers, on_result=lambda r: parts.update(r.timings)
        )
    else:
        for index, (x, labels, ids) in enumerate(prepared.loader):
            module.test_step((x.to(device), labels.to(device), ids), index)
        parts.update(module.timings)
    seconds = time.perf_counter() - start
    cpu_seconds = module.clock() - cpu + _children_cpu() - children  # the workers have been reaped
    by_part = dict(parts)
    by_part[OTHER] = max(0.0, cpu_seconds - sum(by_part.values()))
    one_off = sum(by_part.get(name, 0.0) for name, spec in module.specs.items() if spec["expensive"])
    images = len(prepared.loader.dataset)
    return EvaluationTiming(images, seconds, by_part, one_off, cpu_seconds, workers)


def _children_cpu() -> float:
    """CPU seconds of this process's finished (reaped) children: the evaluation's workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def benchmark_evaluation(
    overrides: Sequence[str],
    variants: Mapping[str, Sequence[str]],
    rounds: int,
    split_images: int,
    threads: int,
) -> str:
    """The report printed by scripts/bench_evaluation.py: the evaluation at the defaults plus `overrides`
    (and each variant's extra overrides, alternated with it in `rounds` so that load changes hit all
    alike), as medians over the rounds."""
    torch.set_num_threads(threads)
    configs = {DEFAULT: evaluation_config(overrides)}
    configs.update({name: evaluation_config([*overrides, *extra]) for name, extra in variants.items()})
    prepared = {name: prepare_evaluation(cfg) for name, cfg in configs.items()}
    runs: dict[str, list[EvaluationTiming]] = {name: [] for name in prepared}
    for _ in range(rounds):
        for name, evaluation in prepared.items():
            runs[name].append(time_evaluation(evaluation))
    cfg = configs[DEFAULT]
    lines = [
        f"evaluation: methods {list(cfg.attribution)} x baselines {list(prepared[DEFAULT].plan.baselines)}, "
        f"{len(cfg.evaluation.metrics)} metrics, batch {cfg.evaluation.batch_size}, {threads} torch "
        f"thread(s) in one process, 1 per worker process, median of {rounds} alternating round(s)",
        "",
        f"| run | processes x threads | images/s wall (median, min-max) | CPU s per image | "
        f"images/s vs default | {split_images:,} images (wall) | {split_images:,} images (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    median = {name: statistics.median(t.images_per_s for t in timings) for name, timings in runs.items()}
    for name, timings in runs.items():
        rates = [t.images_per_s for t in timings]
        cpu = statistics.median(t.cpu_seconds / t.images for t in timings)
        estimate = statistics.median(t.estimate_s(split_images) for t in timings)
        wall = statistics.median(t.estimate_wall_s(split_images) for t in timings)
        shape = "/".join(sorted({f"{t.workers} x 1" if t.workers > 1 else f"1 x {threads}" for t in timings}))
        lines.append(
            f"| {name} | {shape} | {median[name]:.3f} ({min(rates):.3f}-{max(rates):.3f}) | {cpu:.2f} | "
            f"{median[name] / median[DEFAULT]:.2f}x | {format_duration(wall)} | {format_duration(estimate)} |"
        )
    typical = sorted(runs[DEFAULT], key=lambda t: t.images_per_s)[len(runs[DEFAULT]) // 2]
    return "\n".join([*lines, "", *typical.lines(split_images)])
