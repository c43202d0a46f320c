"""The evaluation's speed-ups must not change a single number. `evaluation.share_work`
(ganmex/metrics/shared.py) computes once per batch what every method x baseline shares, and the metrics run
smaller forward passes (`forward_batch`, `max_batch`). The path before them (share_work=false, forward passes
of up to 1024 images) and the default path score the same real embedded test digits with the default
methods x baselines x metrics (a small untrained generator stands in for the GAN: the ganmex baseline is then
just another per-example baseline); every record must agree within 1e-5, the seeded Monte-Carlo metrics and
ROAD's noisy imputation included (they draw the same numbers on both paths). The path before runs Captum's
own DeepLiftShap; the default runs each reference once per call (ganmex/explain/deeplift_shap.py)."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import replace

import captum.attr as ca
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Subset

from ganmex.errors import WorkerError
from ganmex.explain.baselines import BaselineContext, Ganmex
from ganmex.explain.methods import DeepLiftShap
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.stargan import Generator
from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.evaluation_module import EvaluationModule
from ganmex.pipeline.evaluation_stage import IndexedDataset, build_plan
from ganmex.pipeline.evaluation_workers import evaluate_in_workers

TOLERANCE = 1e-5
DEEPLIFT_SHAP_BATCH_BEFORE = 16  # conf/attribution/deeplift_shap.yaml's batch_size before it became 2
IMAGES, BATCH = 6, 3  # two batches: the shared work must not leak from one batch into the next
# the default metrics with thinner Monte-Carlo budgets, so both paths together stay near a minute of CPU
OVERRIDES = [
    "gan=none",
    "logger=none",
    "callbacks=none",
    "evaluation.expensive_images=2",
    "attribution.integrated_gradients.steps=16",
    # passes smaller than these batches' perturbed images, as 256 are of a default batch's
    "attribution.occlusion.forward_batch=64",
    "attribution.integrated_gradients.forward_batch=16",
    "evaluation.metrics.faithfulness_correlation.nr_runs=10",
    "evaluation.metrics.sensitivity_n.nr_runs=5",
    "evaluation.metrics.sensitivity_max.n_perturb_samples=2",
    "evaluation.metrics.counterfactual.kid_subsets=5",
    "evaluation.metrics.counterfactual.kid_subset_size=50",
]


def _plan(trained_classifier_artifact, tmp_path):
    from conftest import compose_config

    cfg = compose_config(
        tmp_path, [*OVERRIDES, f"classifier.artifact={trained_classifier_artifact}"], name="evaluate"
    )
    context = EvalContext.open(cfg)
    plan = build_plan(cfg, context)
    torch.manual_seed(0)
    generator = CounterfactualGenerator(Generator(1, 10, 28, conv_dim=8, n_res=1))
    plan.baselines["ganmex"] = Ganmex().setup(BaselineContext(generator=generator))
    plan.counterfactual_baselines = ["ganmex", "mdts"]
    return context, plan


class CaptumDeepLiftShap(DeepLiftShap):
    """DeepLiftShap as Captum computes it: every reference run again beside every input."""

    def build(self, forward):
        return ca.DeepLiftShap(forward)


def _before(plan):
    """The plan as the evaluation ran it before: nothing shared, forward passes of up to 1024 images (all
    of occlusion's perturbed images at once), Captum's DeepLiftShap on 16 inputs (x 100 references) at a
    time."""
    methods = dict(plan.methods)
    methods["deeplift_shap"] = copy.copy(methods["deeplift_shap"])
    methods["deeplift_shap"].__class__ = CaptumDeepLiftShap
    methods["deeplift_shap"].batch_size = DEEPLIFT_SHAP_BATCH_BEFORE
    for name, method in methods.items():  # occlusion and IG evaluated every perturbed image in one pass
        if getattr(method, "forward_batch", None) is not None:
            methods[name] = copy.copy(method)
            methods[name].forward_batch = None
    configs = {
        name: OmegaConf.create(OmegaConf.to_container(conf, resolve=True))
        for name, conf in plan.metric_configs.items()
    }
    for conf in configs.values():
        if "forward_batch" in conf:
            conf.forward_batch = None
        if "max_batch" in conf:
            conf.max_batch = 1024
    return replace(plan, share_work=False, metric_configs=configs, methods=methods)


def _evaluate(context, plan) -> tuple[list, int]:
    """Every record of one evaluation of the first IMAGES test digits, and the images f was run on."""
    for reference in plan.references.values():  # ROAD's noise stream starts afresh, as in a new run
        getattr(reference, "reset", lambda: None)()
    module = EvaluationModule(context.classifier, plan)
    seen = []
    hook = context.classifier.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    try:
        loader = DataLoader(IndexedDataset(Subset(context.test, range(IMAGES))), batch_size=BATCH)
        for index, batch in enumerate(loader):
            module.test_step(batch, index)
    finally:
        hook.remove()
    return _rows(module.collect()), sum(seen)


def _same(a: float, b: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def test_the_faster_evaluation_gives_every_record_of_the_one_before(trained_classifier_artifact, tmp_path):
    context, plan = _plan(trained_classifier_artifact, tmp_path)
    assert plan.share_work and plan.metric_configs["deletion"].forward_batch < 1024  # the defaults
    assert plan.methods["deeplift_shap"].batch_size < DEEPLIFT_SHAP_BATCH_BEFORE
    before, forwards_before = _evaluate(context, _before(plan))
    after, forwards_after = _evaluate(context, plan)
    assert len(before) == len(after) > 500
    metrics = {row[2] for row in before if isinstance(row[3], float)}
    for name in (
        "faithfulness_correlation@blur",
        "sensitivity_n@baseline",
        "sensitivity_max",
        "sanity_spearman",
    ):
        assert name in metrics, name
    differ = [(b, a) for b, a in zip(before, after, strict=True) if not all(map(_same, b, a))]
    assert not differ, differ[:5]
    # the same numbers from fewer images through f: the shared forward passes ran once
    assert forwards_after < 0.9 * forwards_before


def _rows(results) -> list:
    records = [(r.method, r.baseline, r.metric, r.value) for r in results.records]
    curves = [(c.kind, c.method, c.baseline, c.reference, *c.scores) for c in results.curves]
    layers = [(s.method, s.baseline, *s.layers, *s.spearman) for s in results.sanity]
    return records + curves + layers


def test_two_worker_processes_give_every_record_of_one_process(trained_classifier_artifact, tmp_path):
    """`evaluation.workers=2`: the units of both batches run in two forked processes, out of one process's
    order; every record (ROAD's included: its noise is keyed by batch, method and baseline) must agree."""
    context, plan = _plan(trained_classifier_artifact, tmp_path)
    one, _ = _evaluate(context, plan)
    module = EvaluationModule(context.classifier, plan)
    pids = set()
    test = IndexedDataset(Subset(context.test, range(IMAGES)))
    evaluate_in_workers(module, test, BATCH, workers=2, on_result=lambda result: pids.add(result.pid))
    two = _rows(module.collect())
    assert len(pids) == 2 and os.getpid() not in pids
    assert len(one) == len(two) > 500
    assert any("@road" in str(row[2]) for row in one)
    differ = [(a, b) for a, b in zip(one, two, strict=True) if not all(map(_same, a, b))]
    assert not differ, differ[:5]


def test_a_failing_worker_stops_the_run_with_one_line_naming_its_unit(trained_classifier_artifact, tmp_path):
    context, plan = _plan(trained_classifier_artifact, tmp_path)
    module = EvaluationModule(context.classifier, plan)

    def broken(work, method, baseline, budget):
        if method == "occlusion" and work.index == 1:
            raise ValueError("a broken baseline")

    module.run_unit = broken  # inherited by the forked workers
    test = IndexedDataset(Subset(context.test, range(IMAGES)))
    with pytest.raises(
        WorkerError, match=r"^evaluation worker failed on batch 2, occlusion x \w+: ValueError"
    ):
        evaluate_in_workers(module, test, BATCH, workers=2)
