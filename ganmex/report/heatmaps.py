"""The attribution figure of an explain or evaluate run: one panel per attribution method, stacked.

In a method's panel each row is one input (titled "source vs target"), then for every baseline of that
method the baseline image (when it has one) and its attribution heatmap. Heatmaps sum attributions over
channels and use a diverging map, red positive and blue negative, on one scale per row, symmetric around 0
(the row's largest |a| over the method's baselines, printed under the input), so within a row the baselines
compare directly and white always means "no attribution". Panels stack vertically, so the width is that of
the method with the most baselines, not of all methods side by side; narrow panels share a shelf.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

CMAP = "bwr"
PANEL_INCHES = 1.15
TITLE_INCHES = 0.35  # per method panel, for its title
DPI = 110


def _image(x: Tensor):
    """(C, H, W) in [0, 1] -> array for imshow (grey for one channel)."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def symmetric_limit(heat: Tensor) -> float:
    limit = float(heat.abs().max())
    return limit if limit > 0 else 1.0


def _baseline_image(baselines: object, inputs: Tensor, row: int) -> Tensor | None:
    """The row's baseline (a per-example tensor), the mean of a reference set, or None (no baseline)."""
    if not isinstance(baselines, Tensor):
        return None
    return baselines[row] if baselines.shape == inputs.shape else baselines.mean(0)


def panel_columns(results: Mapping[tuple[str, str], object], method: str) -> list[tuple[str, str]]:
    """A method's columns after the input: ("baseline", b) where b has an image, then ("heat", b)."""
    columns = []
    for m, baseline in results:
        if m == method:
            if isinstance(getattr(results[(m, baseline)], "baselines", None), Tensor):
                columns.append(("baseline", baseline))
            columns.append(("heat", baseline))
    return columns


def pack(methods: Sequence[str], widths: Mapping[str, int], width: int) -> list[list[str]]:
    """First fit: each method goes on the first shelf with room for its columns (narrow gradient-only
    panels share a shelf instead of leaving a mostly empty one each)."""
    shelves: list[list[str]] = []
    for method in methods:
        shelf = next((s for s in shelves if sum(widths[m] for m in s) + widths[method] <= width), None)
        if shelf is None:
            shelves.append([method])
        else:
            shelf.append(method)
    return shelves


def grid_figure(
    inputs: Tensor, results: Mapping[tuple[str, str], object], row_titles: Sequence[str] | None = None
) -> Figure:
    """The figure `save_grid` writes (see the module docstring for its layout)."""
    if not results:
        raise ValueError("no explanations to draw: configure at least one attribution method and baseline")
    methods = list(dict.fromkeys(m for m, _ in results))
    columns = {m: panel_columns(results, m) for m in methods}
    rows = inputs.shape[0]
    widths = {m: 1 + len(c) for m, c in columns.items()}
    width = max(widths.values())
    shelves = pack(methods, widths, width)
    panel_height = PANEL_INCHES * rows + TITLE_INCHES
    figure = Figure(figsize=(PANEL_INCHES * width, panel_height * len(shelves)), layout="constrained")
    placed = []
    for shelf_figure, shelf in zip(
        figure.subfigures(len(shelves), 1, squeeze=False)[:, 0], shelves, strict=True
    ):
        ratios = [widths[m] for m in shelf] + ([width - sum(widths[m] for m in shelf)] or [])
        ratios = [r for r in ratios if r > 0]
        parts = shelf_figure.subfigures(1, len(ratios), squeeze=False, width_ratios=ratios)[0]
        placed += list(zip(parts, shelf, strict=False))
    for subfigure, method in placed:
        subfigure.suptitle(method, fontsize=9, fontweight="bold")
        axes = subfigure.subplots(rows, widths[method], squeeze=False)
        heats = {
            b: results[(method, b)].attributions.detach().float().cpu().sum(1) for _, b in columns[method]
        }
        for r in range(rows):
            limit = symmetric_limit(torch.stack([heat[r] for heat in heats.values()]))
            title = row_titles[r] if row_titles else "input"
            axes[r, 0].imshow(_image(inputs[r]), cmap="gray", vmin=0, vmax=1)
            axes[r, 0].set_title(f"{title}\n±{limit:.2g}", fontsize=6)
            for k, (kind, baseline) in enumerate(columns[method], start=1):
                ax = axes[r, k]
                if kind == "baseline":
                    image = _baseline_image(results[(method, baseline)].baselines, inputs, r)
                    ax.imshow(_image(image), cmap="gray", vmin=0, vmax=1)
                    ax.set_title(baseline, fontsize=6)
                else:
                    ax.imshow(heats[baseline][r].numpy(), cmap=CMAP, vmin=-limit, vmax=limit)
                    has_image = ("baseline", baseline) in columns[method]
                    ax.set_title("attribution" if has_image else baseline, fontsize=6)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
    return figure


def save_grid(
    path: str | Path,
    inputs: Tensor,
    results: Mapping[tuple[str, str], object],
    row_titles: Sequence[str] | None = None,
) -> Path:
    """Write the attribution figure PNG atomically. `results[(method, baseline)]` has `.attributions` and
    `.baselines` (a per-example tensor shaped like `inputs`, a reference set, or None)."""
    figure = grid_figure(inputs, results, row_titles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    FigureCanvasAgg(figure)
    figure.savefig(tmp, format="png", dpi=DPI)
    os.replace(tmp, path)
    return path


def log_grid_to_wandb(path: str | Path, key: str = "explain/grid") -> bool:
    """Log the PNG to the active W&B run; False (and nothing done) when no run is active."""
    import sys

    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return False
    run.log({key: wandb.Image(str(path))})
    return True


def stack_rows(results: Mapping[tuple[str, str], object]) -> dict[tuple[str, str], Tensor]:
    """Attributions only (for saving as a tensor file next to the PNG)."""
    return {k: torch.as_tensor(v.attributions).cpu() for k, v in results.items()}
