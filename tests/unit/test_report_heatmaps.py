"""attributions.png: one panel per method, baseline image + attribution per baseline, one colour scale
per row, narrow panels sharing a shelf, and a width that does not grow with the number of methods."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from matplotlib.image import imread

from ganmex.report.heatmaps import DPI, PANEL_INCHES, grid_figure, pack, save_grid

ROWS = 3


def _results(methods: dict[str, list[str]]) -> dict[tuple[str, str], SimpleNamespace]:
    generator = torch.Generator().manual_seed(0)
    out = {}
    for method, baselines in methods.items():
        for k, baseline in enumerate(baselines):
            attributions = (k + 1) * torch.randn(ROWS, 1, 8, 8, generator=generator)
            images = None if baseline == "none" else torch.rand(ROWS, 1, 8, 8, generator=generator)
            out[(method, baseline)] = SimpleNamespace(attributions=attributions, baselines=images)
    return out


def test_first_fit_packing_puts_narrow_panels_on_one_shelf():
    widths = {"ig": 7, "shap": 3, "occ": 7, "grad": 2, "sal": 2}
    assert pack(list(widths), widths, 7) == [["ig"], ["shap", "grad", "sal"], ["occ"]]


def test_panels_rows_and_shared_symmetric_scale_per_row():
    results = _results({"ig": ["zero", "blur", "ganmex"], "saliency": ["none"]})
    inputs = torch.rand(ROWS, 1, 8, 8)
    figure = grid_figure(inputs, results, [f"{i} vs {i + 1}" for i in range(ROWS)])
    ig, saliency = figure.subfigs[0].subfigs[0], figure.subfigs[1].subfigs[0]
    assert ig._suptitle.get_text() == "ig" and saliency._suptitle.get_text() == "saliency"
    assert (
        len(ig.axes) == ROWS * 7 and len(saliency.axes) == ROWS * 2
    )  # input + (image, heat) x 3; input + heat
    for r in range(ROWS):
        row = ig.axes[7 * r : 7 * (r + 1)]
        heats = [ax.get_images()[0] for ax in row[2::2]]
        limit = max(float(results[("ig", b)].attributions[r].abs().max()) for b in ("zero", "blur", "ganmex"))
        assert all(h.get_clim() == pytest.approx((-limit, limit)) for h in heats)
        assert row[0].get_title() == f"{r} vs {r + 1}\n±{limit:.2g}"
        assert [ax.get_title() for ax in row[1:]] == ["zero", "attribution", "blur", "attribution"] + [
            "ganmex",
            "attribution",
        ]
    assert saliency.axes[1].get_title() == "none"


def test_width_follows_the_widest_method_not_the_number_of_methods(tmp_path):
    baselines = ["zero", "blur", "uniform", "mean", "mdts", "ganmex"]
    results = _results({m: baselines for m in ("ig", "deeplift", "occlusion")} | {"saliency": ["none"]})
    path = save_grid(tmp_path / "attributions.png", torch.rand(ROWS, 1, 8, 8), results)
    height, width = imread(path).shape[:2]
    assert width == round(PANEL_INCHES * 13 * DPI) and width <= 2500
    assert height == pytest.approx(4 * (PANEL_INCHES * ROWS + 0.35) * DPI, abs=2)  # 4 shelves
    assert not list(tmp_path.glob(".*"))


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match="no explanations to draw"):
        grid_figure(torch.rand(1, 1, 8, 8), {})
