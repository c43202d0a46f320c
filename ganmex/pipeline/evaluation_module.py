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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics import Metric

from ganmex.explain.api import explain_all, explain_plan
from ganmex.explain.baselines import Baseline
from ganmex.explain.methods import AttributionMethod
from ganmex.explain.pairs import select_pairs
from ganmex.metrics import (
    CascadingRandomization,
    CounterfactualQuality,
    FaithfulnessCorrelation,
    Gini,
    Infidelity,
    PerturbationCurve,
    SensitivityMax,
    SensitivityN,
)
from ganmex.metrics.localisation import Localisation
from ganmex.metrics.perturbation import InsertionCurve
from ganmex.report.progress import DEFAULT_INTERVAL_S, Progress
from ganmex.report.records import EvalResults

# perturbation curves, computed per removal reference (images or ROAD's imputer)
CURVES = ("deletion", "insertion", "region_deletion")
NONE_BASELINE = "none"
SEP = "|"  # ModuleDict keys may not contain dots

# metric key -> the class whose `output_directions` gives each computed output's direction; the records
# carry it, so the report needs no table of names
OUTPUT_DIRECTIONS: dict[str, dict[str, bool]] = {
    "deletion": PerturbationCurve.output_directions,
    "region_deletion": PerturbationCurve.output_directions,
    "insertion": InsertionCurve.output_directions,
    "faithfulness_correlation": FaithfulnessCorrelation.output_directions,
    "sensitivity_n": SensitivityN.output_directions,
    "infidelity": Infidelity.output_directions,
    "sensitivity_max": SensitivityMax.output_directions,
    "sparsity": Gini.output_directions,
    "sanity": CascadingRandomization.output_directions,
    "localisation": Localisation.output_directions,
    "counterfactual": CounterfactualQuality.output_directions,
}


@dataclass
class EvaluationPlan:
    """What to evaluate; built by the stage from config, consumed by the module."""

    methods: dict[str, AttributionMethod]
    baselines: dict[str, Baseline]
    metric_configs: Mapping[str, Any]
    references: dict[str, Any]
    curve_references: list[str]
    pair_strategy: str = "runner_up"
    use_labels: bool = False
    fixed_target: int | None = None
    seed: int = 0
    expensive_images: int = 100
    counterfactual_baselines: list[str] = field(default_factory=list)
    train_images: Tensor | None = None
    # (N, H, W) bool ground-truth masks of the test split's images (indexed like it), or None
    masks: Tensor | None = None
    # the independent judge for counterfactual quality (oracle validity, FID/KID in its features), or None
    oracle: nn.Module | None = None
    # seconds between progress log lines when stdout is not a terminal (`progress.interval_s`)
    progress_interval_s: float = DEFAULT_INTERVAL_S


def _key(*parts: str) -> str:
    return SEP.join(parts)


class EvaluationModule(L.LightningModule):
    """Explains each test batch's (source, target) pairs and feeds every configured metric."""

    def __init__(self, classifier: nn.Module, plan: EvaluationPlan) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.plan = plan
        self.metrics = nn.ModuleDict()
        self.expensive_seen = 0
        self.results: EvalResults | None = None
        self.sanity_layers: dict[str, list[str]] = {}
        self.pixels_per_image = 1
        self.results_dir = None
        self.progress: Progress | None = None

    # -- metric bookkeeping -------------------------------------------------------------------
    def _metric(self, name: str, *key: str) -> Metric:
        full = _key(name, *key)
        if full not in self.metrics:
            extra = {}
            if name == "counterfactual" and self.plan.train_images is not None:
                extra["train_images"] = self.plan.train_images
            if name == "counterfactual" and self.plan.oracle is not None:
                extra["oracle"] = self.plan.oracle
            self.metrics[full] = instantiate(self.plan.metric_configs[name], **extra).to(self.device)
        return self.metrics[full]

    def _enabled(self, name: str) -> bool:
        return self.plan.metric_configs.get(name) is not None

    def _references(self, baseline_name: str, baseline_values: Tensor | None, x: Tensor) -> dict[str, Any]:
        refs: dict[str, Any] = {}
        for name in self.plan.curve_references:
            if name == "baseline":
                if baseline_values is None:
                    continue  # gradient-only methods have no baseline to delete towards
                refs[name] = baseline_values if baseline_values.shape == x.shape else baseline_values.mean(0)
            else:
                refs[name] = self.plan.references[name]
        return refs

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

    def test_step(self, batch, batch_idx: int) -> None:
        # (x, labels, global test index) from the stage's dataloader; plain (x, labels) keeps one stream
        x, labels, *rest = batch
        image_ids = rest[0] if rest else None
        model = self.classifier
        with torch.no_grad():
            logits = model(x)
        pairs = select_pairs(
            logits,
            self.plan.pair_strategy,
            labels if self.plan.use_labels else None,
            self.plan.fixed_target,
            self.plan.seed + batch_idx,
        )
        if len(pairs) == 0:
            return
        xp, source, target = x[pairs.index], pairs.source, pairs.target
        ids = self.pair_ids(image_ids, pairs, logits.shape[1], self.plan.pair_strategy)
        self.pixels_per_image = xp[0].numel()
        masks = self._pair_masks(image_ids, pairs.index)
        self._progress(f"batch {batch_idx + 1}: explaining {len(xp)} pairs")
        explanations = explain_all(xp, source, target, self.plan.methods, self.plan.baselines, model=model)
        budget = self._expensive_budget(len(xp))
        ids_budget = ids[:budget] if ids is not None else None
        for (method_name, baseline_name), explanation in explanations.items():
            self._progress(f"{method_name} x {baseline_name}: curves, correlation, localisation")
            attributions = explanation.attributions.detach()
            refs = self._references(baseline_name, explanation.baselines, xp)
            for ref_name, ref in refs.items():
                for name in CURVES:
                    if self._enabled(name):
                        self._metric(name, method_name, baseline_name, ref_name).update(
                            model, xp, attributions, source, target, ref
                        )
                if hasattr(ref, "impute"):
                    continue  # random-subset metrics take a reference image, not an imputer
                if self._enabled("faithfulness_correlation"):
                    self._metric("faithfulness_correlation", method_name, baseline_name, ref_name).update(
                        model, xp, attributions, source, target, ref, example_ids=ids
                    )
            subset_ref = next(((n, r) for n, r in refs.items() if not hasattr(r, "impute")), None)
            if budget and subset_ref and self._enabled("sensitivity_n"):
                ref_name, ref = subset_ref
                self._metric("sensitivity_n", method_name, baseline_name, ref_name).update(
                    model,
                    xp[:budget],
                    attributions[:budget],
                    source[:budget],
                    target[:budget],
                    ref[:budget] if torch.is_tensor(ref) and ref.shape == xp.shape else ref,
                    example_ids=ids_budget,
                )
            if self._enabled("infidelity"):
                self._metric("infidelity", method_name, baseline_name).update(
                    model, xp, attributions, source, target, example_ids=ids
                )
            if self._enabled("sparsity"):
                self._metric("sparsity", method_name, baseline_name).update(attributions)
            if masks is not None and self._enabled("localisation"):
                self._metric("localisation", method_name, baseline_name).update(attributions, masks)
            if budget:
                self._progress(f"{method_name} x {baseline_name}: sensitivity-max, sanity check")
                self._expensive(
                    method_name, baseline_name, explanation.baselines, xp, source, target, budget, ids_budget
                )
            self._progress(f"{method_name} x {baseline_name}: done", advance=1)
        self.expensive_seen += budget
        for name in self.plan.counterfactual_baselines:
            if self._enabled("counterfactual") and name in self.plan.baselines:
                with torch.no_grad():
                    counterfactuals = self.plan.baselines[name](xp, source, target)
                self._metric("counterfactual", "-", name).update(model, xp, counterfactuals, source, target)

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

    def _explain_fn(
        self, method: AttributionMethod, baseline_name: str, fixed: Tensor | None
    ) -> tuple[Callable, Callable]:
        """(recompute with the baseline following x, recompute on another model with a fixed baseline)."""
        baseline = self.plan.baselines.get(baseline_name)

        def follow(x: Tensor, source: Tensor, target: Tensor) -> Tensor:
            values = None
            if method.baseline_kind == "per_example" and baseline is not None:
                with torch.no_grad():
                    values = baseline(x, source, target)
            elif method.baseline_kind == "reference_set":
                values = fixed
            return method.attribute(self.classifier, x, values, source, target)

        def on_model(model: nn.Module, x: Tensor, source: Tensor, target: Tensor) -> Tensor:
            return method.attribute(model, x, fixed, source, target)

        return follow, on_model

    def _expensive(
        self, method_name, baseline_name, baseline_values, x, source, target, budget: int, ids=None
    ) -> None:
        """sensitivity_max and sanity on the first `budget` pairs; `ids` are those pairs' global ids."""
        method = self.plan.methods[method_name]
        fixed = baseline_values
        if fixed is not None and method.baseline_kind == "per_example":
            fixed = fixed[:budget]
        follow, on_model = self._explain_fn(method, baseline_name, fixed)
        xs, ss, ts = x[:budget], source[:budget], target[:budget]
        if self._enabled("sensitivity_max"):
            self._metric("sensitivity_max", method_name, baseline_name).update(
                follow, xs, ss, ts, example_ids=ids
            )
        if self._enabled("sanity"):
            metric = self._metric("sanity", method_name, baseline_name)
            metric.update(self.classifier, on_model, xs, ss, ts)
            self.sanity_layers[_key(method_name, baseline_name)] = list(metric.layer_names)

    def on_test_epoch_end(self) -> None:
        computed = {key: metric.compute() for key, metric in self.metrics.items()}
        if self.trainer.is_global_zero:
            directions = {key: getattr(m, "output_directions", {}) for key, m in self.metrics.items()}
            self.results = collect_results(
                computed, self.sanity_layers, self.pixels_per_image, output_directions=directions
            )
            add_ground_truth_and_raw_records(self.results, computed)
            if self.results_dir is not None:  # read back by the launching process (also under ddp_spawn)
                self.results.save(self.results_dir)


def evaluation_masks(datamodule, count: int) -> Tensor | None:
    """The first `count` test images' ground-truth masks when the datamodule has them (decoy_mnist),
    else None: other datasets are not loaded for this."""
    get = getattr(datamodule, "ground_truth_masks", None)
    return None if get is None else get("test")[:count]


def add_ground_truth_and_raw_records(
    results: EvalResults, computed: Mapping[str, Mapping[str, Tensor]]
) -> None:
    """Records beside `collect_results`'s: the localisation measures (datasets with masks) and each
    perturbation curve's raw-score AUC, `<curve>_auc_raw@<reference>`: the trapezoid of the scored output
    itself, not divided by each baseline's own f(x) - f(reference) gap, so under a shared reference (blur,
    road) it compares baselines on one scale (deletion: lower is better; insertion: higher)."""
    for key, values in sorted(computed.items()):
        name, method, baseline, *rest = key.split(SEP)
        at = f"@{rest[0]}" if rest else ""
        if name in CURVES:
            results.add(method, baseline, f"{name}_auc_raw{at}", values["auc"])
        elif name == "localisation":
            for measure, per_example in values.items():
                results.add(method, baseline, measure, per_example)


def _finite_mean(values: Tensor) -> Tensor:
    values = values.float()
    finite = torch.isfinite(values)
    return torch.where(finite, values, torch.zeros_like(values)).sum(0) / finite.sum(0).clamp_min(1)


def _normalised_curve(curve: Tensor, mode: str) -> Tensor:
    """Per example: 1 at the input and 0 at the reference (deletion), 0 -> 1 (insertion)."""
    start, end = (curve[:, :1], curve[:, -1:]) if mode == "deletion" else (curve[:, -1:], curve[:, :1])
    gap = start - end
    safe = torch.where(gap.abs() > 1e-6, gap, torch.full_like(gap, float("nan")))
    return (curve - end) / safe


def collect_results(
    computed: Mapping[str, Mapping[str, Tensor]],
    sanity_layers: Mapping[str, list[str]],
    pixels_per_image: int,
    output_directions: Mapping[str, Mapping[str, bool]] | None = None,
) -> EvalResults:
    """Turn computed metric dicts into long-format records, mean curves and sanity curves.

    `proximity_l1` is reported as the mean per-pixel |G(x) - x| (the GANMEX paper's measure). Each record
    carries its direction: `output_directions[key]` (the metric instances' `output_directions`, so the
    configured class decides) when given, else `OUTPUT_DIRECTIONS` by metric name. The names that
    `add_ground_truth_and_raw_records` adds later (raw AUCs, localisation measures) are declared here so
    they carry it too."""
    results = EvalResults()
    for key, values in sorted(computed.items()):
        name, method, baseline, *rest = key.split(SEP)
        ref = rest[0] if rest else None
        at = f"@{ref}" if ref else ""
        given = (output_directions or {}).get(key)
        directions = dict(given) if given is not None else OUTPUT_DIRECTIONS.get(name, {})

        def add(record_name: str, output: str, data: Tensor, directions=directions, m=method, b=baseline):
            results.add(m, b, record_name, data, higher_is_better=directions.get(output))

        if name in CURVES:
            if "auc" in directions:
                results.declare(f"{name}_auc_raw{at}", directions["auc"])
        elif name == "localisation":
            for measure in values:
                if measure in directions:
                    results.declare(measure, directions[measure])
        if name in ("deletion", "insertion", "region_deletion"):
            prefix = "" if name == "deletion" else f"{name.split('_')[0]}_"
            add(f"{name}_auc{at}", "auc_normalised", values["auc_normalised"])
            if name != "insertion":
                add(f"{prefix}aopc{at}", "aopc", values["aopc"])
            add(f"{prefix}flip_fraction{at}", "flip_fraction", values["flip_fraction"])
            if name in ("deletion", "insertion"):
                curve = _finite_mean(_normalised_curve(values["curve"], name))
                results.add_curve(
                    name,
                    method,
                    baseline,
                    values["fractions"][0].tolist(),
                    curve.tolist(),
                    n=len(values["curve"]),
                    reference=ref or "baseline",
                )
        elif name == "faithfulness_correlation":
            add(f"faithfulness_correlation{at}", name, values["faithfulness_correlation"])
        elif name == "sensitivity_n":
            add(f"sensitivity_n{at}", name, _row_nanmean(values["sensitivity_n"]))
        elif name in ("infidelity", "sensitivity_max"):
            add(name, name, values[name])
        elif name == "sparsity":
            add("gini", "gini", values["gini"])
        elif name == "sanity":
            spearman = values["spearman"]
            add("sanity_spearman", "spearman", _row_nanmean(spearman))
            layers = sanity_layers.get(
                _key(method, baseline), [f"layer{i}" for i in range(spearman.shape[1])]
            )
            results.add_sanity(method, baseline, layers, _finite_mean(spearman).tolist(), n=len(spearman))
        elif name == "counterfactual":
            for metric_name, out_name in (
                ("validity", "validity"),
                ("oracle_validity", "oracle_validity"),
                ("l1", "proximity_l1"),
                ("l2", "proximity_l2"),
                ("changed_fraction", "change_sparsity"),
                ("nearest_train_l2", "nn_distance"),
            ):
                if metric_name in values:
                    scale = 1.0 / pixels_per_image if metric_name == "l1" else 1.0  # mean per-pixel |delta|
                    add(out_name, metric_name, values[metric_name] * scale)
            for set_name, out_name in (("fid", "fid"), ("kid_mean", "kid")):
                if set_name in values:
                    add(out_name, set_name, values[set_name].reshape(1))
    return results


def _row_nanmean(values: Tensor) -> Tensor:
    finite = torch.isfinite(values)
    total = torch.where(finite, values, torch.zeros_like(values)).sum(1)
    count = finite.sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))
