"""`curves.png` (deletion/insertion curves) and `sanity.png` (cascading randomisation), written atomically.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas directly, so nothing touches pyplot's
global state or the user's interactive backend and it works on headless machines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganmex.report.records import Curve, SanityCurve

log = logging.getLogger(__name__)

PANEL_SIZE = (3.6, 2.8)  # inches per subplot
DPI = 110
KIND_LABELS = {"deletion": "deletion (MoRF)", "insertion": "insertion (LeRF)"}


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Render to a temp file next to `path` and rename, so a reader never sees half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    FigureCanvasAgg(figure)
    figure.savefig(tmp, format="png", dpi=DPI)
    os.replace(tmp, path)
    return path


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _legend_width(names: Sequence[str]) -> float:
    """Inches the outside legend needs, so constrained layout never squeezes the panels to nothing."""
    return 0.8 + 0.07 * max((len(name) for name in names), default=0)


LINESTYLES = ("-", "--", ":", "-.")
ORIGINAL = "original"  # the sanity plot's x = 0: no layer randomised
SANITY_COLUMNS = 3  # panels per row of sanity.png, so six methods stay under ~2000 px wide


def _styles(items: Sequence, labels: Sequence[str | None]) -> dict[tuple[str, str | None], dict]:
    """Colour by baseline, line style by group label, so sweep groups of one baseline share a colour."""
    baselines = _unique(item.baseline for item in items)
    groups = _unique(labels)
    return {
        (b, g): {"color": f"C{baselines.index(b) % 10}", "linestyle": LINESTYLES[groups.index(g) % 4]}
        for b in baselines
        for g in groups
    }


def _line_label(baseline: str, label: str | None) -> str:
    return baseline if not label else f"{baseline} · {label}"


def curves_figure(curves: Sequence[Curve], labels: Sequence[str | None] | None = None) -> Figure:
    """One row of panels per method, one panel per curve kind x reference it has; one line per baseline.

    A method lacking some kind x reference (gradient-only methods have no `baseline` reference) gets
    fewer panels, never an empty one.

    `labels[i]`, when given, is appended to curve i's legend entry (report.py uses it for sweep groups).
    """
    labels = list(labels) if labels is not None else [None] * len(curves)
    if len(labels) != len(curves):
        raise ValueError(f"{len(labels)} labels for {len(curves)} curves; give one label per curve")
    methods = _unique(c.method for c in curves)
    order = {p: i for i, p in enumerate(_unique((c.kind, c.reference) for c in curves))}
    panels = {
        m: sorted(_unique((c.kind, c.reference) for c in curves if c.method == m), key=order.get)
        for m in methods
    }
    width = max(len(p) for p in panels.values())
    lines = _unique(_line_label(c.baseline, lab) for c, lab in zip(curves, labels, strict=True))
    styles = _styles(curves, labels)
    figure = Figure(
        figsize=(PANEL_SIZE[0] * width + _legend_width(lines), PANEL_SIZE[1] * len(methods)),
        layout="constrained",
    )
    axes = figure.subplots(len(methods), width, squeeze=False)
    for curve, label in zip(curves, labels, strict=True):
        row = methods.index(curve.method)
        ax = axes[row, panels[curve.method].index((curve.kind, curve.reference))]
        name = _line_label(curve.baseline, label)
        ax.plot(curve.fractions, curve.scores, **styles[curve.baseline, label], label=name, linewidth=1.4)
    for row, method in enumerate(methods):
        for col in range(width):
            ax = axes[row, col]
            if col >= len(panels[method]):
                figure.delaxes(ax)
                continue
            kind, reference = panels[method][col]
            ax.set_title(f"{method}: {KIND_LABELS[kind]}, reference {reference}", fontsize=8)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("fraction " + ("removed" if kind == "deletion" else "restored"), fontsize=7)
            if col == 0:
                ax.set_ylabel("mean normalised score", fontsize=7)
    handles, names = [], []
    for ax in figure.axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, loc="outside right upper", fontsize=8, title="baseline")
    return figure


def sanity_figure(sanity: Sequence[SanityCurve], labels: Sequence[str | None] | None = None) -> Figure:
    """Spearman correlation vs. how many layers were randomised (top first), starting at the unrandomised
    model (x = 0, "original", correlation 1 by definition): one panel per method, one line per baseline."""
    labels = list(labels) if labels is not None else [None] * len(sanity)
    if len(labels) != len(sanity):
        raise ValueError(f"{len(labels)} labels for {len(sanity)} sanity curves; give one label per curve")
    layers = _unique(layer for s in sanity for layer in s.layers)
    methods = _unique(s.method for s in sanity)
    lines = _unique(_line_label(s.baseline, lab) for s, lab in zip(sanity, labels, strict=True))
    styles = _styles(sanity, labels)
    width = max(PANEL_SIZE[0], 0.35 * (len(layers) + 1) + 1.5)
    columns = min(len(methods), SANITY_COLUMNS)
    rows = -(-len(methods) // columns)
    figure = Figure(
        figsize=(width * columns + _legend_width(lines), (PANEL_SIZE[1] + 0.6) * rows), layout="constrained"
    )
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    for ax in grid.flat[len(methods) :]:
        figure.delaxes(ax)
    axes = list(grid.flat[: len(methods)])
    for curve, label in zip(sanity, labels, strict=True):
        ax = axes[methods.index(curve.method)]
        name = _line_label(curve.baseline, label)
        x = [0, *(1 + layers.index(layer) for layer in curve.layers)]
        ax.plot(
            x,
            [1.0, *curve.spearman],
            **styles[curve.baseline, label],
            marker="o",
            markersize=3,
            linewidth=1.3,
            label=name,
        )
    for col, (ax, method) in enumerate(zip(axes, methods, strict=True)):
        ax.axhline(0.0, color="0.5", linewidth=0.8)
        ax.set_xticks(range(len(layers) + 1), [ORIGINAL, *layers], rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{method}: cascading randomisation", fontsize=9)
        ax.set_xlabel("randomised from the top down to", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3)
        if col % columns == 0:
            ax.set_ylabel("Spearman correlation with\nthe trained model's attribution", fontsize=8)
    handles, names = [], []
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, loc="outside right upper", fontsize=8, title="baseline")
    return figure


def plot_curves(
    curves: Sequence[Curve], path: str | Path, labels: Sequence[str | None] | None = None
) -> Path | None:
    """Write `curves.png`; returns None (and writes nothing) when there are no curves."""
    if not curves:
        log.info("no deletion/insertion curves measured: %s not written", Path(path).name)
        return None
    return save_figure(curves_figure(curves, labels), path)


def plot_sanity(
    sanity: Sequence[SanityCurve], path: str | Path, labels: Sequence[str | None] | None = None
) -> Path | None:
    """Write `sanity.png`; returns None (and writes nothing) when no sanity check ran."""
    if not sanity:
        log.info("no sanity-check correlations measured: %s not written", Path(path).name)
        return None
    return save_figure(sanity_figure(sanity, labels), path)
