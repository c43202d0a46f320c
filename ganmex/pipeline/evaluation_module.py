"""EvaluationModule: explanations x baselines x faithfulness metrics inside Lightning's test loop.

Running as a test loop gives sharding across ranks for free (each rank takes an interleaved share of the
test images) and the torchmetrics states are gathered when computed, so `trainer=ddp_cpu` / `ddp` give the
same numbers as one process: batches carry each image's global index and the seeded Monte-Carlo metrics draw
per pair from (seed, pair id), not from one stream whose order depends on the shard. Rank zero turns the
computed metrics into `EvalResults`.

Ground truth: when the evaluated dataset provides per-image masks of the deciding pixels (decoy_mnist:
the class-coded swatch), `plan.masks` holds them indexed like the test split and every method x baseline is
also scored by the localisation metrics. Sign convention: attributions explain logit_c - logit_t (or logit_c),
so positive relevance is evidence for the source c over the target t; the localisation metric counts positive
relevance by default (`relevance: positive`, see ganmex/metrics/localisation.py).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from torch import Tensor, nn

from ganmex.errors import ConfigError
from ganmex.explain.api import explain_pair, explain_plan
from ganmex.explain.baselines import Baseline
from ganmex.explain.methods import AttributionMethod
from ganmex.explain.pairs import PairSelector
from ganmex.metrics.protocol import CurveOutput, ExplainedBatch, LayerOutput, is_image, protocol_of
from ganmex.metrics.shared import SharedWork
from ganmex.report.progress import DEFAULT_INTERVAL_S, Progress
from ganmex.report.records import NO_METHOD, EvalResults

SEP = "|"  # ModuleDict keys may not contain dots


@dataclass
class EvaluationPlan:
    """What to evaluate; built by the stage from config, consumed by the module."""

    methods: dict[str, AttributionMethod]
    baselines: dict[str, Baseline]
    # metric key -> its config (`_target_` names a class of the protocol in ganmex/metrics/protocol.py)
    metric_configs: Mapping[str, Any]
    references: dict[str, Any]
    curve_references: list[str]
    pairs: PairSelector = field(default_factory=PairSelector)
    expensive_images: int = 100
    counterfactual_baselines: list[str] = field(default_factory=list)
    train_images: Tensor | None = None
    # (N, H, W) bool ground-truth masks of the test split's images (indexed like it), or None
    masks: Tensor | None = None
    # the independent judge for counterfactual quality (oracle validity, FID/KID in its features), or None
    oracle: nn.Module | None = None
    # seconds between progress log lines when stdout is not a terminal (`progress.interval_s`)
    progress_interval_s: float = DEFAULT_INTERVAL_S
    # compute the work every method of a batch shares once (`evaluation.share_work`, metrics/shared.py)
    share_work: bool = True


@dataclass
class BatchWork:
    """One test batch's pairs and what its units share: the ExplainedBatch fields common to every method x
    baseline, each baseline's values (computed once) and the batch's SharedWork."""

    index: int
    common: dict[str, Any]
    baseline_values: dict[str, Tensor | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.common["x"])


@dataclass(frozen=True)
class MetricState:
    """One metric instance's state as a worker hands it back: its record scope (name, method, baseline,
    reference), its torchmetrics state, how many updates made it and its extra state, if any."""

    scope: tuple[str, str, str, str | None]
    state: dict[str, Any]
    updates: int
    extra: Any = None


def _has_extra_state(metric: nn.Module) -> bool:
    return type(metric).get_extra_state is not nn.Module.get_extra_state


def _key(*parts: str) -> str:
    return SEP.join(parts)


def _metric_spec(name: str, conf: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol attributes of `evaluation.metrics.<name>`'s class."""
    target = conf.get("_target_") if isinstance(conf, Mapping) else None
    if not target:
        raise ConfigError(
            f"evaluation.metrics.{name} has no _target_; name a metric class, e.g. "
            f"_target_: ganmex.metrics.evaluation.GiniMetric (see ganmex/metrics/protocol.py)"
        )
    return protocol_of(get_class(target))


class EvaluationModule(L.LightningModule):
    """Explains each test batch's (source, target) pairs and feeds every configured metric."""

    def __init__(self, classifier: nn.Module, plan: EvaluationPlan) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.plan = plan
        self.specs = {name: _metric_spec(name, conf) for name, conf in plan.metric_configs.items()}
        self.metrics = nn.ModuleDict()
        self.scopes: dict[str, tuple[str, str, str, str | None]] = {}  # instance key -> its record scope
        self.touched: set[str] = set()  # instance keys updated since the last take_states
        self.expensive_seen = 0
        self.results: EvalResults | None = None
        self.results_dir = None
        self.progress: Progress | None = None
        # seconds spent per metric key (and "explain"), for the benchmark's per-metric shares
        self.timings: Counter[str] = Counter()
        self.clock: Callable[[], float] = time.perf_counter
        self.progress_clock: Callable[[], float] = time.monotonic  # the ETA's clock (a fake one in tests)

    def _metric(self, name: str, method: str, baseline: str, reference: str | None) -> nn.Module:
        key = _key(name, method, baseline, *([reference] if reference else []))
        if key not in self.metrics:
            context = {"train_images": self.plan.train_images, "oracle": self.plan.oracle}
            extra = {k: context[k] for k in self.specs[name]["context"] if context.get(k) is not None}
            self.metrics[key] = instantiate(self.plan.metric_configs[name], **extra).to(self.device)
            self.scopes[key] = (name, method, baseline, reference)
        self.touched.add(key)
        return self.metrics[key]

    def take_states(self) -> dict[str, MetricState]:
        """The states of the metric instances used since the last call, which are then reset: a worker's
        share of the records, for `merge_states` in the process that reports them."""
        states = {}
        for key in sorted(self.touched):
            metric = self.metrics[key]
            # copies: reset() empties list states in place
            state = {k: list(v) if isinstance(v, list) else v for k, v in metric.metric_state.items()}
            # what a metric keeps beside its states (nn.Module's extra state: the sanity check's layer names)
            extra = metric.get_extra_state() if _has_extra_state(metric) else None
            states[key] = MetricState(self.scopes[key], state, metric.update_count, extra)
            metric.reset()
        self.touched.clear()
        return states

    def merge_states(self, states: Mapping[str, MetricState]) -> None:
        """Append other processes' metric states (a later batch's after an earlier one's: the records come out
        in the order one process would have produced them)."""
        for incoming in states.values():
            metric = self._metric(*incoming.scope)
            for name, value in incoming.state.items():
                if not isinstance(value, list):  # every evaluation metric keeps `cat` lists
                    raise TypeError(f"cannot append metric state {name} of {incoming.scope[0]}: not a list")
                getattr(metric, name).extend(
                    value
                )  # after this metric's own: torchmetrics' merge_state prepends
            metric._update_count += incoming.updates  # compute() warns at 0 updates
            if incoming.extra is not None:
                metric.set_extra_state(incoming.extra)
        self.touched.clear()

    def _references(self, batch: ExplainedBatch, which: str) -> Iterator[tuple[str | None, Any]]:
        """The removal references a metric is fed, by its `references` scope."""
        if which == "none":
            yield None, None
            return
        chosen = []
        for name in self.plan.curve_references:
            if name == "baseline":
                values = batch.baseline_values
                if values is None:
                    continue  # gradient-only methods have no baseline to delete towards
                ref = values if values.shape == batch.x.shape else values.mean(0)
            else:
                ref = self.plan.references[name]
            if which == "all" or is_image(ref):
                chosen.append((name, ref))
        yield from chosen[:1] if which == "first_image" else chosen

    def _feed(self, scope: str, batch: ExplainedBatch, budget: int) -> None:
        """Update every metric of `scope` with this batch (per reference, trimmed to the budget)."""
        for name, spec in self.specs.items():
            if spec["scope"] != scope:
                continue
            view = batch.head(budget) if spec["expensive"] else batch
            if not len(view) or any(getattr(view, f) is None for f in spec["requires"]):
                continue
            for ref_name, ref in self._references(view, spec["references"]):
                metric = self._metric(name, batch.method, batch.baseline, ref_name)
                start = self.clock()
                metric.update(replace(view, reference=ref, reference_name=ref_name))
                self.timings[name] += self.clock() - start

    # -- the test loop --------------------------------------------------------------------------
    @staticmethod
    def pair_ids(image_ids: Tensor | None, pairs, classes: int, strategy: str) -> Tensor | None:
        """One global id per pair for the per-example seeded metrics: the image's test index, or
        index * classes + target under `all` (an image has several pairs there)."""
        if image_ids is None:
            return None
        ids = torch.as_tensor(image_ids).to(pairs.index.device, torch.long)[pairs.index]
        return ids * classes + pairs.target.long() if strategy == "all" else ids

    def on_test_start(self) -> None:
        """One progress item per (method, baseline) explanation of each test batch, with its ETA."""
        batches = sum(self.trainer.num_test_batches)
        per_batch = len(explain_plan(self.plan.methods, self.plan.baselines))
        self.progress = Progress(
            int(batches * per_batch),
            "evaluate",
            interval_s=self.plan.progress_interval_s,
            clock=self.progress_clock,
            enabled=self.trainer.is_global_zero,
        )

    def on_test_end(self) -> None:
        if self.progress is not None:
            self.progress.close()

    def _progress(self, label: str, advance: int = 0) -> None:
        if self.progress is not None:
            self.progress.set_label(label)
            if advance:
                self.progress.advance(advance)

    def prepare(self, batch, batch_idx: int) -> BatchWork | None:
        """The pairs of one test batch and what its units share; None when the batch has no pair."""
        # (x, labels, global test index) from the stage's dataloader; plain (x, labels) keeps one stream
        x, labels, *rest = batch
        image_ids = rest[0] if rest else None
        model = self.classifier
        with torch.no_grad():
            logits = model(x)
        pairs = self.plan.pairs.select(logits, labels, offset=batch_idx)
        if len(pairs) == 0:
            return None
        common = {
            "model": model,
            "x": x[pairs.index],
            "source": pairs.source,
            "target": pairs.target,
            "example_ids": self.pair_ids(image_ids, pairs, logits.shape[1], self.plan.pairs.strategy),
            "masks": self._pair_masks(image_ids, pairs.index),
            "shared": SharedWork() if self.plan.share_work else None,
        }
        return BatchWork(batch_idx, common)

    def units(self) -> list[tuple[str, str]]:
        """A batch's units in the order they run: every (method, baseline) of `explain_plan`, then
        (NO_METHOD, name) for each counterfactual baseline when a counterfactual metric is configured."""
        plan = explain_plan(self.plan.methods, self.plan.baselines)
        scored = any(spec["scope"] == "counterfactual" for spec in self.specs.values())
        return plan + [(NO_METHOD, name) for name in self.plan.counterfactual_baselines if scored]

    def run_unit(self, work: BatchWork, method_name: str, baseline_name: str, budget: int) -> None:
        """Explain and score one (method, baseline) of a batch, or one counterfactual baseline's images
        (method NO_METHOD). A unit depends on nothing another unit did: ROAD's noise is keyed by
        (seed, batch, method, baseline), so units may run in any order or process."""
        common = work.common
        x, source, target = common["x"], common["source"], common["target"]
        for reference in self.plan.references.values():
            getattr(reference, "reseed", lambda *_: None)(work.index, method_name, baseline_name)
        if method_name == NO_METHOD:
            with torch.no_grad():
                values = self.plan.baselines[baseline_name](x, source, target)
            cf = ExplainedBatch(method=NO_METHOD, baseline=baseline_name, baseline_values=values, **common)
            self._feed("counterfactual", cf, budget)
            return
        start = self.clock()
        methods, baselines, cache = self.plan.methods, self.plan.baselines, work.baseline_values
        explanation = explain_pair(
            x, source, target, method_name, baseline_name, methods, baselines, cache, model=self.classifier
        )
        self.timings["explain"] += self.clock() - start
        self._progress(f"{method_name} x {baseline_name}: metrics")
        explained = self._explained(common, method_name, baseline_name, explanation)
        self._feed("explanation", explained, budget)

    def test_step(self, batch, batch_idx: int) -> None:
        work = self.prepare(batch, batch_idx)
        if work is None:
            return
        self._progress(f"batch {batch_idx + 1}: explaining {len(work)} pairs")
        budget = self._expensive_budget(len(work))
        for method_name, baseline_name in self.units():
            self.run_unit(work, method_name, baseline_name, budget)
            if method_name != NO_METHOD:
                self._progress(f"{method_name} x {baseline_name}: done", advance=1)
        self.expensive_seen += budget

    def _explained(self, common: dict, method_name: str, baseline_name: str, explanation) -> ExplainedBatch:
        """The batch of one method x baseline, with the re-explaining callables of the sensitivity metrics."""
        method = self.plan.methods[method_name]
        baseline = self.plan.baselines.get(baseline_name)
        values = explanation.baselines
        batch = ExplainedBatch(
            method=method_name,
            baseline=baseline_name,
            attributions=explanation.attributions.detach(),
            baseline_values=values,
            baseline_kind=method.baseline_kind,
            **common,
        )

        def reexplain(x: Tensor, source: Tensor, target: Tensor) -> Tensor:
            """f's attributions of x with the baseline following x (a reference set stays fixed)."""
            follow = None
            if method.baseline_kind == "per_example" and baseline is not None:
                with torch.no_grad():
                    follow = baseline(x, source, target)
            elif method.baseline_kind == "reference_set":
                follow = values
            return method.attribute(self.classifier, x, follow, source, target)

        def explain_model(model: nn.Module, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
            """Another model's attributions of x against the baseline values of x's own pairs."""
            fixed = values[: len(x)] if method.baseline_kind == "per_example" else values
            return method.attribute(model, x, fixed, source, target)

        return replace(batch, reexplain=reexplain, explain_model=explain_model)

    def _pair_masks(self, image_ids: Tensor | None, index: Tensor) -> Tensor | None:
        """Ground-truth masks of the batch's pairs, looked up by each image's global test index."""
        if self.plan.masks is None:
            return None
        if image_ids is None:
            raise ValueError(
                "ground-truth masks need each image's test index: feed (image, label, index) batches "
                "(the evaluate stage's IndexedDataset does)"
            )
        ids = torch.as_tensor(image_ids).cpu().long()[index.cpu()]
        return self.plan.masks[ids].to(self.device)

    def _expensive_budget(self, n: int) -> int:
        world = max(1, self.trainer.world_size if self._trainer is not None else 1)
        per_rank = math.ceil(self.plan.expensive_images / world)
        return max(0, min(n, per_rank - self.expensive_seen))

    def collect(self) -> EvalResults:
        """Every metric instance's outputs as records (computing gathers the states across ranks)."""
        outputs = {key: list(metric.outputs(self.scopes[key][0])) for key, metric in self.metrics.items()}
        return collect_results(outputs, self.scopes)

    def on_test_epoch_end(self) -> None:
        results = self.collect()  # on every rank: computing is a collective under DDP
        if self.trainer.is_global_zero:
            self.results = results
            if self.results_dir is not None:  # read back by the launching process (also under ddp_spawn)
                self.results.save(self.results_dir)


def evaluation_masks(datamodule, count: int) -> Tensor | None:
    """The first `count` test images' ground-truth masks when the datamodule has them (decoy_mnist),
    else None: other datasets are not loaded for this."""
    get = getattr(datamodule, "ground_truth_masks", None)
    return None if get is None else get("test")[:count]


def collect_results(outputs: Mapping[str, list], scopes: Mapping[str, tuple]) -> EvalResults:
    """Each metric instance's outputs as records of its (method, baseline), `@<reference>` appended to the
    names of per-reference metrics; curves and sanity layers as the report's curve records."""
    results = EvalResults()
    for key in sorted(outputs):
        _, method, baseline, reference = scopes[key]
        at = f"@{reference}" if reference else ""
        for out in outputs[key]:
            if isinstance(out, CurveOutput):
                results.add_curve(
                    out.kind,
                    method,
                    baseline,
                    out.fractions,
                    out.scores,
                    n=out.n,
                    reference=reference or "baseline",
                )
            elif isinstance(out, LayerOutput):
                results.add_sanity(method, baseline, out.layers, out.spearman, n=out.n)
            else:
                results.add(
                    method, baseline, f"{out.name}{at}", out.values, higher_is_better=out.higher_is_better
                )
    return results
