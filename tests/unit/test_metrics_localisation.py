"""Localisation measures on hand-computed examples: mass, rank (with ties), pointing game, ROC AUC."""

from __future__ import annotations

import math

import pytest
import torch

from ganmex.metrics.localisation import (
    Localisation,
    LocalisationAUC,
    PointingGame,
    RelevanceMassAccuracy,
    RelevanceRankAccuracy,
)


def _one(a: list[list[float]], m: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([a]), torch.tensor([m], dtype=torch.bool)


def test_hand_computed_values_on_a_2x3_map():
    # relevance 4 and -1 in the mask (2 pixels); 3, 2, 1, 0 outside
    a, m = _one([[4.0, -1.0, 3.0], [2.0, 1.0, 0.0]], [[1, 1, 0], [0, 0, 0]])
    metric = Localisation(relevance="positive")
    metric.update(a, m)
    out = {k: float(v) for k, v in metric.compute().items()}
    assert out["relevance_mass_accuracy"] == pytest.approx(4 / 10)  # negatives count as 0
    assert out["relevance_rank_accuracy"] == pytest.approx(1 / 2)  # top-2 = {4, 3}: one in the mask
    assert out["pointing_game"] == 1.0
    # positive relevance in the mask: 4 and 0; outside 3, 2, 1, 0 -> pairs won: 4 beats 4, 0 ties one
    assert out["localisation_auc"] == pytest.approx((4 + 0.5) / 8)


def test_absolute_and_signed_relevance():
    a, m = _one([[4.0, -5.0, 3.0], [2.0, 1.0, 0.0]], [[0, 1, 0], [0, 0, 0]])
    absolute = Localisation(relevance="absolute")
    absolute.update(a, m)
    out = absolute.compute()
    assert float(out["relevance_mass_accuracy"]) == pytest.approx(5 / 15)
    assert float(out["pointing_game"]) == 1.0
    assert float(out["localisation_auc"]) == 1.0
    signed = Localisation(relevance="signed")
    signed.update(a, m)
    out = signed.compute()
    assert float(out["relevance_mass_accuracy"]) == pytest.approx(-5 / 5)
    assert float(out["localisation_auc"]) == 0.0


def test_rank_accuracy_shares_tied_places():
    # mask of 2 pixels; values 5 (outside), then a three-way tie at 1: one place left for 3 pixels,
    # 2 of which are in the mask -> expected hits 2/3, accuracy (0 + 2/3) / 2
    a, m = _one([[5.0, 1.0, 1.0, 1.0]], [[0, 1, 1, 0]])
    metric = RelevanceRankAccuracy()
    metric.update(a.view(1, 1, 4), m.view(1, 1, 4))
    assert float(metric.compute()["relevance_rank_accuracy"]) == pytest.approx(1 / 3)


def test_empty_mask_is_nan_and_single_measure_classes():
    a = torch.randn(3, 1, 4, 4)
    m = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    m[0, 0, 0, 0] = True
    m[1] = True  # every pixel: no negatives, AUC undefined
    for cls, name in (
        (RelevanceMassAccuracy, "relevance_mass_accuracy"),
        (RelevanceRankAccuracy, "relevance_rank_accuracy"),
        (PointingGame, "pointing_game"),
        (LocalisationAUC, "localisation_auc"),
    ):
        metric = cls(relevance="absolute")
        metric.update(a, m)
        out = metric.compute()
        assert list(out) == [name] and cls.output_directions == {name: True}
        assert math.isnan(float(out[name][2]))
    auc = LocalisationAUC(relevance="absolute")
    auc.update(a, m)
    assert math.isnan(float(auc.compute()["localisation_auc"][1]))


def test_accumulates_over_batches_and_sums_channels():
    a = torch.zeros(2, 3, 2, 2)
    a[:, 0, 0, 0] = 1.0
    a[:, 1, 0, 0] = 1.0
    a[:, 2, 1, 1] = 1.0  # pixel (0, 0) holds 2 of the 3 units
    m = torch.zeros(2, 2, 2, dtype=torch.bool)
    m[:, 0, 0] = True
    metric = Localisation()
    metric.update(a[:1], m[:1])
    metric.update(a[1:], m[1:])
    out = metric.compute()
    assert out["relevance_mass_accuracy"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert out["pointing_game"].tolist() == [1.0, 1.0]


def test_bad_inputs_say_what_to_fix():
    with pytest.raises(ValueError, match="unknown relevance 'pos'"):
        Localisation(relevance="pos")
    with pytest.raises(ValueError, match="unknown localisation measures"):
        Localisation(measures=("mass",))
    with pytest.raises(ValueError, match="do not match 2 images of 4x4"):
        Localisation().update(torch.randn(2, 1, 4, 4), torch.ones(2, 5, 5, dtype=torch.bool))
