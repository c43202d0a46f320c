"""How fast the evaluate stage scores images, and how long the whole test split would take.

`time_evaluation` runs the stage's own `EvaluationModule.test_step` (every configured method x baseline x
metric, on the configured test images, in the configured batches) and reads the seconds the module books per
metric. The metrics marked `expensive` see only the first `evaluation.expensive_images` pairs of a run, so
their time is a one-off cost; the rest grows with the number of images. The estimate for a whole split is
therefore one-off + per-image cost x split size, not the images/s of a short run scaled up.
CEM, the attribution grid and the report files are not timed (they do not grow with `num_images`).

Beside the time, the bound: every image the run passes through the classifier f is counted (forward only,
or forward and backward when gradients are on), and those passes are timed alone, in batches of
`BOUND_BATCH` on 1 thread. Their sum is the CPU time f's own passes need: with the same numbers the
evaluation cannot be faster than that, whatever its bookkeeping, solvers and scheduling do.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader

from ganmex.bench.timing import best_time
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
# images through f, booked by a forward hook in the module's per-part Counter (counts, not seconds)
F_FORWARD = "f images, forward only"
F_GRADIENT = "f images, forward and backward"
# the bound's isolated passes: images per pass (the curves' forward_batch) and repeats (the best is kept)
BOUND_BATCH = 256
BOUND_REPEATS = 20
# seconds of passes before the timed ones (the first passes of a process run slower)
BOUND_WARMUP_S = 1.0


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
    f_images: dict[str, float] = field(default_factory=dict)  # F_FORWARD / F_GRADIENT: images through f

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


@dataclass(frozen=True)
class FPassCost:
    """CPU seconds per image of f's passes alone (1 thread, batches of BOUND_BATCH): forward only, and
    forward plus the backward pass to the input (what explaining costs per image through f)."""

    forward_s: float
    gradient_s: float

    def bound_s(self, timing: EvaluationTiming) -> float:
        """CPU seconds per test image that `timing`'s passes through f need at these costs."""
        images = timing.f_images
        spent = images.get(F_FORWARD, 0) * self.forward_s + images.get(F_GRADIENT, 0) * self.gradient_s
        return spent / timing.images

    def lines(self, timing: EvaluationTiming) -> list[str]:
        per_image = {key: count / timing.images for key, count in timing.f_images.items()}
        bound = self.bound_s(timing)
        share = bound / (timing.cpu_seconds / timing.images)
        cores = timing.cpu_seconds / timing.seconds  # the run's own parallelism
        return [
            f"f's own passes: {per_image.get(F_FORWARD, 0):,.0f} images forward only and "
            f"{per_image.get(F_GRADIENT, 0):,.0f} forward and backward per test image, at "
            f"{1e3 * self.forward_s:.3f} / {1e3 * self.gradient_s:.3f} ms per image alone (1 thread, "
            f"batches of {BOUND_BATCH}): {bound:.3f} CPU s per image, {100 * share:.0f}% of this run's; the "
            f"same numbers cannot come faster than {cores / bound:.3f} images/s on this run's {cores:.2f} "
            f"busy cores",
        ]


def _best_after_warmup(fn: Callable[[], object]) -> float:
    """Seconds of the fastest of BOUND_REPEATS calls of `fn`, after BOUND_WARMUP_S of calls."""
    warm_until = time.perf_counter() + BOUND_WARMUP_S
    while time.perf_counter() < warm_until:
        fn()
    return best_time(fn, BOUND_REPEATS)[0]


def f_pass_cost(classifier: torch.nn.Module, image_shape: Sequence[int]) -> FPassCost:
    """Time f's forward and forward + input-gradient passes alone, per image (FPassCost)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.rand(BOUND_BATCH, *image_shape, generator=torch.Generator().manual_seed(0))

        def gradient() -> None:
            inputs = x.clone().requires_grad_(True)
            classifier(inputs).sum().backward()

        with torch.no_grad():
            forward = _best_after_warmup(lambda: classifier(x))
        with torch.enable_grad():
            both = _best_after_warmup(gradient)
    finally:
        torch.set_num_threads(threads)
    return FPassCost(forward / BOUND_BATCH, both / BOUND_BATCH)


def count_f_images(module: EvaluationModule) -> torch.utils.hooks.RemovableHandle:
    """Book every image through the module's classifier (and the copies explainers make of it) under
    F_FORWARD or F_GRADIENT in `module.timings`; forked workers inherit the hook and hand the counts back."""

    def hook(_: torch.nn.Module, args: tuple) -> None:
        module.timings[F_GRADIENT if torch.is_grad_enabled() else F_FORWARD] += args[0].shape[0]

    return module.classifier.register_forward_pre_hook(hook)


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
    counting = count_f_images(module)
    start, cpu, children = time.perf_counter(), module.clock(), _children_cpu()
    try:
        if workers > 1:
            loader = prepared.loader
            evaluate_in_workers(
                module,
                loader.dataset,
                loader.batch_size,
                workers,
                on_result=lambda r: parts.update(r.timings),
            )
        else:
            for index, (x, labels, ids) in enumerate(prepared.loader):
                module.test_step((x.to(device), labels.to(device), ids), index)
            parts.update(module.timings)
    finally:
        counting.remove()
    seconds = time.perf_counter() - start
    f_images = {key: parts.pop(key, 0) for key in (F_FORWARD, F_GRADIENT)}
    cpu_seconds = module.clock() - cpu + _children_cpu() - children  # the workers have been reaped
    by_part = dict(parts)
    by_part[OTHER] = max(0.0, cpu_seconds - sum(by_part.values()))
    one_off = sum(by_part.get(name, 0.0) for name, spec in module.specs.items() if spec["expensive"])
    images = len(prepared.loader.dataset)
    return EvaluationTiming(images, seconds, by_part, one_off, cpu_seconds, workers, f_images)


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
    default = prepared[DEFAULT]
    cost = f_pass_cost(default.context.classifier, default.loader.dataset[0][0].shape)
    return "\n".join([*lines, "", *typical.lines(split_images), "", *cost.lines(typical)])
