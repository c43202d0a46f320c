"""`evaluation.share_work` (ganmex/metrics/shared.py) computes once per batch what every method x baseline
shares; it must not change a single number. Both paths score the same real embedded test digits with the
default methods x baselines x metrics (a small untrained generator stands in for the GAN: the ganmex
baseline is then just another per-example baseline), and every record must agree within 1e-5, the seeded
Monte-Carlo metrics included (their draws come from (seed, pair id) on both paths)."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch.utils.data import DataLoader, Subset

from ganmex.explain.baselines import BaselineContext, Ganmex
from ganmex.models.counterfactual import CounterfactualGenerator
from ganmex.models.stargan import Generator
from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.evaluation_module import EvaluationModule
from ganmex.pipeline.evaluation_stage import IndexedDataset, build_plan

TOLERANCE = 1e-5
IMAGES, BATCH = 6, 3  # two batches: the shared work must not leak from one batch into the next
# the default metrics with thinner Monte-Carlo budgets, so both paths together stay near a minute of CPU
OVERRIDES = [
    "gan=none",
    "logger=none",
    "callbacks=none",
    "evaluation.expensive_images=2",
    "attribution.integrated_gradients.steps=16",
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


def _evaluate(context, plan, share_work: bool) -> tuple[list, int]:
    """Every record of one evaluation of the first IMAGES test digits, and the images f was run on."""
    for reference in plan.references.values():  # ROAD's noise stream starts afresh, as in a new run
        getattr(reference, "reset", lambda: None)()
    module = EvaluationModule(context.classifier, replace(plan, share_work=share_work))
    seen = []
    hook = context.classifier.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    try:
        loader = DataLoader(IndexedDataset(Subset(context.test, range(IMAGES))), batch_size=BATCH)
        for index, batch in enumerate(loader):
            module.test_step(batch, index)
    finally:
        hook.remove()
    results = module.collect()
    records = [(r.method, r.baseline, r.metric, r.value) for r in results.records]
    curves = [(c.kind, c.method, c.baseline, c.reference, *c.scores) for c in results.curves]
    layers = [(s.method, s.baseline, *s.spearman) for s in results.sanity]
    return records + curves + layers, sum(seen)


def _same(a: float, b: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def test_shared_work_gives_every_record_of_computing_it_per_method(trained_classifier_artifact, tmp_path):
    context, plan = _plan(trained_classifier_artifact, tmp_path)
    before, forwards_before = _evaluate(context, plan, share_work=False)
    after, forwards_after = _evaluate(context, plan, share_work=True)
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
    assert forwards_after < 0.8 * forwards_before
