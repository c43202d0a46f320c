"""The metric benchmarks (scripts/bench_metrics.py): our deletion curve against Quantus, ROAD's solvers,
the timing helpers and the dated note they append to."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
import torch

from ganmex.bench.inputs import GRADIENT_ATTRIBUTIONS, embedded_test_images, untrained_mnist_cnn
from ganmex.bench.notes import append_note
from ganmex.bench.quantus_deletion import CountingModel, forward_bound, our_curves, quantus_pixel_flipping
from ganmex.bench.road import SOLVERS, road_bench, road_curves
from ganmex.bench.timing import best_time, seconds

STEP = 98  # 8 steps over 28x28 pixels: a short curve


@pytest.fixture(scope="module")
def digits():
    model = untrained_mnist_cnn()
    x, y = embedded_test_images(3)
    return model, x, y


def test_our_curve_matches_quantus_and_skipping_saves_forward_passes(digits):
    pytest.importorskip("quantus")
    model, x, y = digits
    a = GRADIENT_ATTRIBUTIONS["grad_x_input"](model, x, y).detach()
    skipped, n_skip = our_curves(model, x, y, a, STEP, 1024, skip_unchanged=True)
    full, n_full = our_curves(model, x, y, a, STEP, 1024, skip_unchanged=False)
    theirs = quantus_pixel_flipping(model, x, y, a, STEP)
    points = x[0].numel() // STEP + 1
    assert n_full == len(x) * points and n_skip < n_full  # black pixels removed to black change nothing
    np.testing.assert_allclose(skipped, full, atol=1e-5)
    np.testing.assert_allclose(skipped[:, 1:], theirs, atol=1e-4)  # Quantus leaves out the untouched image


def test_gradient_attributions_rank_what_they_promise(digits):
    model, x, y = digits
    saliency = GRADIENT_ATTRIBUTIONS["saliency"](model, x, y)
    gxi = GRADIENT_ATTRIBUTIONS["grad_x_input"](model, x, y)
    assert (saliency >= 0).all() and saliency.gt(0).any()
    assert (gxi[x == 0] == 0).all()


def test_counting_model_and_forward_bound_count_images(digits):
    model, x, _ = digits
    counting = CountingModel(model)
    forward_bound(counting, x, images=7, max_batch=2)()
    assert counting.images == 7


def test_road_solvers_give_the_same_curve(digits):
    model, x, y = digits
    a = GRADIENT_ATTRIBUTIONS["saliency"](model, x, y)
    results = road_curves(model, x, y, a, max_batch=1024, repeats=1)
    assert list(results) == list(SOLVERS)
    curves = [curve for _, curve in results.values()]
    assert curves[0].shape == (len(x), 21)
    for curve in curves[1:]:
        np.testing.assert_allclose(curve, curves[0], atol=1e-3)


def test_road_bench_reports_one_row_per_solver():
    lines = road_bench(images=2, repeats=1)
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| solver")]
    assert len(rows) == len(SOLVERS)
    assert "| 1.00x | 0.0e+00 |" in rows[0]


def test_best_time_keeps_the_fastest_and_the_last_result():
    calls = iter([0.0, 0.02, 0.0])
    assert best_time(lambda: torch.tensor(next(calls)), 2)[1] == pytest.approx(0.02)
    elapsed, _ = best_time(lambda: torch.ones(1), 3)
    assert elapsed >= 0
    with pytest.raises(ValueError, match="repeats=0 must be >= 1"):
        best_time(lambda: None, 0)
    seen = []
    assert seconds(seen.append, 5) >= 0 and seen == [5]


def test_notes_are_appended_to_a_dated_file(tmp_path):
    day = datetime.date(2026, 1, 2)
    append_note(["a"], "bench-x", tmp_path, day)
    path = append_note(["b", "c"], "bench-x", tmp_path, day)
    assert path == tmp_path / "2026-01-02-bench-x.md"
    assert path.read_text() == "a\nb\nc\n"
