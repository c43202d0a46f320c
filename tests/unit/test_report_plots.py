"""curves.png and sanity.png: real, non-empty PNGs of the expected layout, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from ganmex.report.plots import curves_figure, plot_curves, plot_sanity, sanity_figure
from ganmex.report.records import EvalResults

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results() -> EvalResults:
    out = EvalResults()
    fractions = np.linspace(0.0, 1.0, 11)
    # ig has two baselines and both references; saliency (gradient only) has baseline `none`, blur only
    for method, baselines, references in (
        ("ig", ("zero", "ganmex"), ("baseline", "blur")),
        ("saliency", ("none",), ("blur",)),
    ):
        for k, baseline in enumerate(baselines):
            for reference in references:
                decay = np.exp(-(k + 2) * fractions)
                for kind, curve in (("deletion", decay), ("insertion", 1 - decay)):
                    out.add_curve(kind, method, baseline, fractions, curve, n=4, reference=reference)
            out.add_sanity(method, baseline, ["logits", "fc1", "conv2", "conv1"], [0.9, 0.5, 0.2 * k, 0.0])
    return out


def test_curves_png_has_a_row_per_method_and_no_empty_panel(results, tmp_path):
    figure = curves_figure(results.curves)
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == [
        "ig: deletion (MoRF), reference baseline",
        "ig: insertion (LeRF), reference baseline",
        "ig: deletion (MoRF), reference blur",
        "ig: insertion (LeRF), reference blur",
        "saliency: deletion (MoRF), reference blur",
        "saliency: insertion (LeRF), reference blur",
    ]
    assert [len(ax.get_lines()) for ax in axes] == [2, 2, 2, 2, 1, 1]
    np.testing.assert_allclose(axes[0].get_lines()[1].get_ydata(), np.exp(-3 * np.linspace(0, 1, 11)))
    path = plot_curves(results.curves, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400 and image[..., :3].std() > 0.05  # not blank
    assert not list(tmp_path.glob(".*"))  # the temp file was renamed away


def test_sanity_png_has_one_line_per_method_and_baseline(results, tmp_path):
    figure = sanity_figure(results.sanity)
    lines = [line for ax in figure.get_axes() for line in ax.get_lines() if line.get_label()[0] != "_"]
    assert len(lines) == 3
    assert lines[0].get_xdata()[0] == 0 and lines[0].get_ydata()[0] == 1.0  # the unrandomised model
    assert list(lines[0].get_ydata()[1:]) == [0.9, 0.5, 0.0, 0.0]
    assert [tick.get_text() for tick in figure.get_axes()[0].get_xticklabels()] == [
        "original",
        "logits",
        "fc1",
        "conv2",
        "conv1",
    ]
    path = plot_sanity(results.sanity, tmp_path / "sanity.png")
    assert path.stat().st_size > 5000 and path.read_bytes()[:8] == PNG_MAGIC


def test_nothing_to_plot_writes_nothing(tmp_path):
    assert plot_curves([], tmp_path / "curves.png") is None
    assert plot_sanity([], tmp_path / "sanity.png") is None
    assert not list(tmp_path.iterdir())


def test_group_labels_name_the_legend_lines(results):
    labels = ["lambda=1" if i % 2 else "lambda=10" for i in range(len(results.curves))]
    names = {
        line.get_label() for ax in curves_figure(results.curves, labels).get_axes() for line in ax.get_lines()
    }
    assert "zero · lambda=10" in names and "ganmex · lambda=1" in names
    with pytest.raises(ValueError, match="1 labels for 10 curves"):
        curves_figure(results.curves, ["x"])
