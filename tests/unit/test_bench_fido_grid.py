"""The FIDO grid (scripts/fido_grid.py, scripts/bench_fido.py): in-fillers as removal references, the
evaluation's own deletion metric, and the grid's rows, table and figure."""

from __future__ import annotations

import math

import pytest
import torch

from ganmex.bench.fido import fido_speed, fido_speed_markdown
from ganmex.bench.fido_grid import (
    build_infillers,
    deletion_scores,
    fido_grid,
    grid_markdown,
    removal_reference,
)
from ganmex.bench.inputs import correct_digits, untrained_mnist_cnn
from ganmex.explain.infill import ConstantInFill, LocalMeanInFill
from ganmex.metrics.perturbation import PerturbationCurve
from ganmex.report.saliency_grid import save_saliency_grid


@pytest.fixture(scope="module")
def pairs():
    model = untrained_mnist_cnn()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    source = logits.argmax(1)
    target = logits.scatter(1, source[:, None], float("-inf")).argmax(1)
    return model, x, source, target


def test_in_filler_imputes_removed_pixels_and_keeps_the_rest():
    x = torch.rand(2, 1, 28, 28)
    removed = torch.zeros_like(x, dtype=torch.bool)
    removed[:, :, :14] = True
    out = ConstantInFill(0.5).impute(x, removed)
    assert torch.equal(out[:, :, 14:], x[:, :, 14:])
    assert (out[:, :, :14] == 0.5).all()


def test_removal_reference_is_an_image_for_fixed_fills_and_the_imputer_for_mask_aware_ones(pairs):
    _, x, source, target = pairs
    mean, local = ConstantInFill(0.25), LocalMeanInFill()
    assert torch.equal(removal_reference(mean, x, source, target), torch.full_like(x, 0.25))
    assert removal_reference(local, x, source, target) is local


def test_deletion_scores_are_the_shipped_deletion_metric(pairs):
    model, x, source, target = pairs
    saliency = torch.rand_like(x)
    auc, flip = deletion_scores(model, x, saliency, source, target, torch.zeros_like(x))
    # conf/evaluation/default.yaml's deletion: 20 steps of pixels, one-vs-one contrast
    direct = PerturbationCurve(mode="deletion", num_steps=20, contrast="one_vs_one")
    direct.update(model, x, saliency, source, target, torch.zeros_like(x))
    expected = direct.compute()
    assert auc == pytest.approx(float(expected["auc_normalised"].nanmean()))
    flips = expected["flip_fraction"]
    assert (math.isnan(flip) and flips.isnan().all()) or flip == pytest.approx(float(flips.nanmean()))


def test_artifact_in_fills_are_left_out_without_an_artifact(caplog):
    fillers = build_infillers(["mean", "local_mean", "autoencoder", "ganmex"], {})
    assert list(fillers) == ["mean", "local_mean"]
    assert isinstance(fillers["mean"], ConstantInFill) and isinstance(fillers["local_mean"], LocalMeanInFill)
    assert "autoencoder in-fill left out" in caplog.text and "pass --gan <dir>" in caplog.text


def test_grid_has_a_row_and_maps_per_cell_and_writes_its_table_and_figure(pairs, tmp_path):
    model, x, source, target = pairs
    fillers = build_infillers(["mean", "local_mean"], {})
    rows, maps = fido_grid(model, x, source, target, fillers, methods=["fido_ssr", "bbmp_sdr"], epochs=2)
    cells = [
        ("fido_ssr", "mean"),
        ("fido_ssr", "local_mean"),
        ("bbmp_sdr", "mean"),
        ("bbmp_sdr", "local_mean"),
    ]
    assert [(r.method, r.infill) for r in rows] == cells and list(maps) == cells
    for row in rows:
        assert row.seconds_per_image > 0 and math.isfinite(row.auc_black)
        if row.infill == "mean":  # the shipped mean in-fill is black: its own reference is the black one
            assert (row.auc_own, row.flip_own) == (row.auc_black, row.flip_black)
        else:  # local means of the kept pixels are no black image
            assert row.auc_own != row.auc_black
    for saliency in maps.values():
        assert saliency.shape == x.shape and 0 <= saliency.min() and saliency.max() <= 1
    table = grid_markdown(rows, "header").splitlines()
    assert table[0] == "header" and len(table) == 4 + len(cells)
    assert table[4].startswith("| fido_ssr | mean | ")
    png = save_saliency_grid(x, source, target, maps, tmp_path / "grid.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_fido_speed_times_each_cell_both_ways(pairs):
    model, x, source, target = pairs
    rows = fido_speed(model, x[:2], source[:2], target[:2], ["bbmp_ssr"], ["mean"], single=1)
    (row,) = rows
    assert (row.method, row.infill, row.epochs, row.samples) == ("bbmp_ssr", "mean", 100, 1)
    assert row.batched > 0 and row.single > 0
    assert "| bbmp_ssr | mean | 100 x 1 |" in fido_speed_markdown(rows)


def test_correct_digits_are_classified_correctly_with_runner_up_targets(mnist_test_digits):
    images, labels = mnist_test_digits[0][:20].flatten(1), mnist_test_digits[1][:20]

    class Labels(torch.nn.Module):  # right on even labels only, runner-up = label + 1
        def forward(self, x):
            y = labels[(x.flatten(1)[:, None] == images[None]).all(-1).float().argmax(1)]
            logits = torch.nn.functional.one_hot((y + (y % 2)) % 10, 10).float()
            return logits + 0.5 * torch.nn.functional.one_hot((y + 1) % 10, 10)

    x, y, t = correct_digits(Labels(), 5)
    assert len(x) == 5 and (y % 2 == 0).all()
    assert torch.equal(t, (y + 1) % 10)


def test_an_unknown_method_or_in_fill_lists_the_shipped_ones():
    with pytest.raises(
        FileNotFoundError, match=r"no shipped config infill/nope.yaml: choose one of .*local_mean"
    ):
        build_infillers(["nope"], {})
    with pytest.raises(FileNotFoundError, match=r"attribution/fido_xyz.yaml: choose one of .*fido_ssr"):
        fido_speed(None, None, None, None, ["fido_xyz"], ["mean"])
