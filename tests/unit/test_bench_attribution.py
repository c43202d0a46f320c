"""The attribution benchmark (scripts/bench_attribution.py): its one-by-one Captum reference computes what
the batched method does, and each method gets a row."""

from __future__ import annotations

import math

import pytest
import torch

from ganmex.bench.attribution import (
    AttributionSpeed,
    attribution_markdown,
    attribution_speed,
    captum_one_by_one,
    shipped_methods,
)
from ganmex.bench.inputs import untrained_mnist_cnn
from ganmex.explain.pairs import select_pairs


@pytest.fixture(scope="module")
def setup():
    model = untrained_mnist_cnn()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return model, x, shipped_methods(["saliency", "grad_x_input", "lrp"])


@pytest.mark.parametrize("name", ["saliency", "grad_x_input"])
def test_one_by_one_reference_computes_the_batched_attributions(setup, name):
    model, x, methods = setup
    pairs = select_pairs(model(x), "runner_up")
    method = methods[name]
    batched = method.attribute(model, x, torch.zeros_like(x), pairs.source, pairs.target)
    single = captum_one_by_one(method, model, x, pairs.source, pairs.target)
    torch.testing.assert_close(single, batched.detach(), rtol=1e-4, atol=1e-6)


def test_each_method_gets_a_row_and_lrp_has_no_reference(setup):
    model, x, methods = setup
    rows = attribution_speed(methods, model, x, single=2)
    assert [r.method for r in rows] == ["saliency", "grad_x_input", "lrp"]
    assert all(r.batched > 0 for r in rows)
    assert rows[0].single > 0 and math.isnan(rows[2].single)


def test_markdown_shows_a_dash_without_reference():
    rows = [AttributionSpeed("saliency", 400.0, 200.0), AttributionSpeed("lrp", 50.0, float("nan"))]
    lines = attribution_markdown(rows, "setup").splitlines()
    assert lines[0] == "setup" and lines[2] == "|---|---:|---:|---:|"
    assert lines[3] == "| saliency | 400 | 200 | 2.0x |"
    assert lines[4] == "| lrp | 50 | - | - |"
