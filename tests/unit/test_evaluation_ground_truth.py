"""The evaluation module scores localisation against ground-truth masks looked up by test index, and
records raw-score deletion AUCs beside the normalised ones."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from ganmex.explain.methods import GradXInput
from ganmex.metrics import ZeroReference
from ganmex.metrics.evaluation import CurveMetric
from ganmex.metrics.localisation import Localisation
from ganmex.metrics.protocol import ExplainedBatch
from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan, evaluation_masks


class CornerModel(nn.Module):
    """Class 0 if the top-left 2x2 corner is bright, class 1 otherwise: the corner decides."""

    def forward(self, x):
        corner = x[:, 0, :2, :2].sum((1, 2))
        return torch.stack([corner, torch.full_like(corner, 2.0)], 1)


def _plan(masks):
    curve = {"_target_": "ganmex.metrics.evaluation.CurveMetric", "num_steps": 4}
    return EvaluationPlan(  # the stage passes an OmegaConf node; plain dicts work too
        methods={"grad_x_input": GradXInput()},
        baselines={},  # grad x input needs no baseline: its key is `none`
        metric_configs={
            "localisation": {"_target_": "ganmex.metrics.evaluation.LocalisationMetric"},
            "deletion": curve,
        },
        references={"zero": ZeroReference()},
        curve_references=["zero"],
        masks=masks,
    )


def test_masks_are_looked_up_by_test_index_and_scored():
    x = torch.zeros(3, 1, 6, 6)
    x[:, 0, :2, :2] = 1.0  # corner sum 4 > 2: class 0, runner-up class 1
    x[:, 0, 4:, 4:] = 0.5  # a distractor that does not enter the model
    masks = torch.zeros(10, 6, 6, dtype=torch.bool)
    masks[[7, 2, 5], :2, :2] = True  # the three images are test images 7, 2 and 5
    module = EvaluationModule(CornerModel(), _plan(masks))
    module.test_step((x, torch.zeros(3, dtype=torch.long), torch.tensor([7, 2, 5])), 0)
    computed = {key: metric.compute() for key, metric in module.metrics.items()}
    loc = computed["localisation|grad_x_input|none"]
    # grad x input of logit_0 - logit_1 is exactly the corner: all positive relevance sits in the mask
    assert loc["relevance_mass_accuracy"].tolist() == [1.0, 1.0, 1.0]
    assert loc["pointing_game"].tolist() == [1.0, 1.0, 1.0]
    names = {r.metric for r in module.collect().records}
    assert {"relevance_mass_accuracy", "localisation_auc", "deletion_auc_raw@zero"} <= names


def test_wrong_index_points_elsewhere_and_missing_index_is_an_error():
    x = torch.zeros(1, 1, 6, 6)
    x[:, 0, :2, :2] = 1.0
    masks = torch.zeros(2, 6, 6, dtype=torch.bool)
    masks[1, 4:, 4:] = True  # image 1's mask is the other corner
    module = EvaluationModule(CornerModel(), _plan(masks))
    module.test_step((x, torch.zeros(1, dtype=torch.long), torch.tensor([1])), 0)
    assert module.metrics["localisation|grad_x_input|none"].compute()["pointing_game"].item() == 0.0
    module = EvaluationModule(CornerModel(), _plan(masks))
    with pytest.raises(ValueError, match="need each image's test index"):
        module.test_step((x, torch.zeros(1, dtype=torch.long)), 0)


def test_raw_auc_record_is_the_unnormalised_trapezoid():
    metric = CurveMetric(num_steps=2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]]))
    x, pair = torch.ones(1, 1, 2, 2), torch.tensor([0])
    batch = ExplainedBatch(
        model, x, pair, pair + 1, "m", "b", attributions=torch.arange(4.0).view(1, 1, 2, 2)
    )
    metric.update(replace(batch, reference=torch.zeros(1), reference_name="blur"))
    (record,) = [out for out in metric.outputs("deletion") if out.name == "deletion_auc_raw"]
    # scores 8, 4, 0 at fractions 0, 0.5, 1: trapezoid 0.5 * (8 + 4) / 2 + 0.5 * (4 + 0) / 2 = 4
    assert record.values.item() == pytest.approx(4.0) and record.higher_is_better is False


def test_evaluation_masks_only_from_datamodules_that_have_them():
    class Plain:
        pass

    class WithMasks:
        def ground_truth_masks(self, split):
            assert split == "test"
            return torch.arange(5).view(5, 1, 1).bool()

    assert evaluation_masks(Plain(), 3) is None
    assert evaluation_masks(WithMasks(), 3).shape == (3, 1, 1)
    assert Localisation.output_directions["pointing_game"] is True
