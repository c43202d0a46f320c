"""The evaluation loop knows no metric by name: a metric configured only by `_target_` (defined in this file)
runs and is reported, and every record carries the direction its metric gives it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ganmex.explain.methods import GradXInput
from ganmex.metrics.protocol import ExplainedBatch, Output, protocol_of
from ganmex.metrics.references import ZeroReference
from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan


class CornerModel(nn.Module):
    """Class 0 if the top-left 2x2 corner is bright, class 1 otherwise: the corner decides."""

    def forward(self, x):
        corner = x[:, 0, :2, :2].sum((1, 2))
        return torch.stack([corner, torch.full_like(corner, 2.0)], 1)


class AttributionMass(Metric):
    """A metric the evaluation has never heard of: the sum of each pair's attributions. Its class declares
    no scope: the protocol's defaults (one instance per method x baseline, every pair) apply."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, batch: ExplainedBatch) -> None:
        self.values.append(self.scale * batch.attributions.flatten(1).sum(1))

    def compute(self):
        return dim_zero_cat(self.values)

    def outputs(self, key: str) -> Iterator[Output]:
        yield Output(key, self.compute(), higher_is_better=True)


class ReferenceCount(AttributionMass):
    """Per-reference and expensive: sees the reference it is scored against, and only the budget's pairs."""

    references = "all"
    expensive = True

    def update(self, batch: ExplainedBatch) -> None:
        self.values.append(torch.full((len(batch),), float(batch.reference_name == "zero")))

    def outputs(self, key: str) -> Iterator[Output]:
        yield Output(key, self.compute(), higher_is_better=False)


def _corner_batch(n: int = 3):
    x = torch.zeros(n, 1, 6, 6)
    x[:, 0, :2, :2] = 1.0  # corner sum 4 > 2: class 0, runner-up class 1
    return x, torch.zeros(n, dtype=torch.long), torch.arange(n)


def _module(metrics: dict, expensive_images: int = 100, masks=None) -> EvaluationModule:
    plan = EvaluationPlan(
        methods={"grad_x_input": GradXInput()},
        baselines={},  # grad x input needs no baseline: its key is `none`
        metric_configs=OmegaConf.create(metrics),
        references={"zero": ZeroReference()},
        curve_references=["zero"],
        expensive_images=expensive_images,
        masks=masks,
    )
    return EvaluationModule(CornerModel(), plan)


def test_a_metric_named_only_in_yaml_runs_and_is_reported_in_results_md(tmp_path):
    from ganmex.report import write_report

    target = f"{__name__}.AttributionMass"
    module = _module({"attribution_mass": {"_target_": target, "scale": 2.0}})
    module.test_step(_corner_batch(), 0)
    results = module.collect()
    records = [r for r in results.records if r.metric == "attribution_mass"]
    # grad x input of logit_0 - logit_1 is 1 on each of the 4 corner pixels: mass 4, scaled by 2
    assert [r.value for r in records] == [8.0, 8.0, 8.0]
    assert {(r.method, r.baseline, r.higher_is_better) for r in records} == {("grad_x_input", "none", True)}
    files = write_report(results, tmp_path, console=False, wandb=False)
    assert "attribution_mass" in files.results_md.read_text()


def test_per_reference_and_expensive_scopes_come_from_the_class():
    module = _module({"refs": {"_target_": f"{__name__}.ReferenceCount"}}, expensive_images=2)
    module.test_step(_corner_batch(3), 0)
    records = module.collect().records
    assert {(r.metric, r.higher_is_better) for r in records} == {("refs@zero", False)}
    assert [r.value for r in records] == [1.0, 1.0]  # the 2 pairs of the budget, against `zero`
    module.test_step(_corner_batch(3), 1)  # the budget is spent: the second batch adds nothing
    assert len(module.collect().records) == 2


def test_a_metric_that_needs_masks_is_skipped_without_them_and_scored_with_them():
    config = {"localisation": {"_target_": "ganmex.metrics.evaluation.LocalisationMetric"}}
    module = _module(config)
    module.test_step(_corner_batch(), 0)
    assert module.collect().records == []
    masks = torch.zeros(3, 6, 6, dtype=torch.bool)
    masks[:, :2, :2] = True
    module = _module(config, masks=masks)
    module.test_step(_corner_batch(), 0)
    by_name = {r.metric: r for r in module.collect().records}
    assert by_name["pointing_game"].value == 1.0 and by_name["pointing_game"].higher_is_better is True


def test_a_class_without_the_protocol_is_one_clear_error():
    with pytest.raises(TypeError, match=r"torch.nn.modules.linear.Linear is no evaluation metric: it needs"):
        protocol_of(nn.Linear)


class NeedsMask(AttributionMass):
    requires = ("attributions", "mask")  # a typo: the field is `masks`


def test_a_required_field_the_batch_does_not_have_is_one_clear_error():
    with pytest.raises(
        ValueError, match=r"NeedsMask.requires names \['mask'\], which ExplainedBatch has not"
    ):
        protocol_of(NeedsMask)


def test_curve_records_carry_their_names_and_directions():
    curve = {"_target_": "ganmex.metrics.evaluation.CurveMetric", "num_steps": 2}
    module = _module(
        {
            "deletion": {**curve, "plot": True},
            "insertion": {**curve, "mode": "insertion", "prefix": "insertion_"},
        }
    )
    module.test_step(_corner_batch(1), 0)
    results = module.collect()
    direction = {r.metric: r.higher_is_better for r in results.records}
    assert direction == {
        "deletion_auc@zero": False,
        "aopc@zero": True,
        "flip_fraction@zero": False,
        "deletion_auc_raw@zero": False,
        "insertion_auc@zero": True,
        "insertion_flip_fraction@zero": False,
        "insertion_auc_raw@zero": True,
    }
    assert [(c.kind, c.reference) for c in results.curves] == [("deletion", "zero")]


def test_a_metric_without_target_is_one_clear_error():
    from ganmex.errors import ConfigError

    with pytest.raises(ConfigError, match=r"evaluation.metrics.gini has no _target_; name a metric class"):
        _module({"gini": {"eps": 1.0e-7}})


class ScoredPairs(AttributionMass):
    """Records each scored pair's global id (image index * classes + target under strategy=all)."""

    def update(self, batch: ExplainedBatch) -> None:
        self.values.append(batch.example_ids.float())


def test_the_attributions_grid_shows_exactly_the_scored_pairs_under_strategy_all():
    from ganmex.explain.pairs import PairSelector
    from ganmex.pipeline.evaluation_stage import grid_pairs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4)).eval()
    images = torch.rand(5, 1, 6, 6)
    test = [(image, 0) for image in images]
    module = _module({"pairs": {"_target_": f"{__name__}.ScoredPairs"}})
    module.classifier = model
    module.plan.pairs = PairSelector("all")
    module.test_step((images, torch.zeros(5, dtype=torch.long), torch.arange(5)), 0)
    scored = {int(r.value) for r in module.collect().records}
    assert len(scored) == 5 * 3  # every image against each of its 3 other classes
    x, pairs = grid_pairs(model, PairSelector("all"), test, count=2, batch_size=5, device="cpu")
    shown = {int(i) * 4 + int(t) for i, t in zip(pairs.index, pairs.target, strict=True)}
    assert shown == {i for i in scored if i // 4 < 2} and len(x) == 6
