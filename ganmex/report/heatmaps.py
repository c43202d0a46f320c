"""One PNG grid per explain run: each row an input, then (baseline, heatmap) for every method x baseline.

Heatmaps sum attributions over channels and use a diverging map, red positive and blue negative, on a
scale symmetric around 0 (each panel's own max |a|), so white always means "no attribution".
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
DPI = 110


def _image(x: Tensor):
    """(C, H, W) in [0, 1] -> array for imshow (grey for one channel)."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def symmetric_limit(heat: Tensor) -> float:
    limit = float(heat.abs().max())
    return limit if limit > 0 else 1.0


def save_grid(
    path: str | Path,
    inputs: Tensor,
    results: Mapping[tuple[str, str], object],
    row_titles: Sequence[str] | None = None,
) -> Path:
    """Write the grid PNG atomically. `results[(method, baseline)]` has `.attributions` and `.baselines`
    (a per-example tensor shaped like `inputs`, a reference set, or None)."""
    if not results:
        raise ValueError("no explanations to draw: configure at least one attribution method and baseline")
    keys = list(results)
    rows, cols = inputs.shape[0], 1 + 2 * len(keys)
    figure = Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * rows + 0.6))
    axes = figure.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(_image(inputs[r]), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(row_titles[r] if row_titles else "input", fontsize=6)
        for k, (method, baseline) in enumerate(keys):
            result = results[(method, baseline)]
            base_ax, heat_ax = axes[r, 1 + 2 * k], axes[r, 2 + 2 * k]
            baselines = getattr(result, "baselines", None)
            if isinstance(baselines, Tensor) and baselines.shape == inputs.shape:
                base_ax.imshow(_image(baselines[r]), cmap="gray", vmin=0, vmax=1)
            elif isinstance(baselines, Tensor):  # a reference set: show its mean
                base_ax.imshow(_image(baselines.mean(0)), cmap="gray", vmin=0, vmax=1)
            base_ax.set_title(baseline, fontsize=6)
            heat = result.attributions[r].detach().float().cpu().sum(0)
            limit = symmetric_limit(heat)
            heat_ax.imshow(heat.numpy(), cmap=CMAP, vmin=-limit, vmax=limit)
            heat_ax.set_title(f"{method}\n±{limit:.2g}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    figure.tight_layout()
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
