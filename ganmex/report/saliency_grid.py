"""The FIDO grid figure: a few digits down, one saliency map per (method, in-fill) across, so that what
the in-fill does to a map is visible at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import Tensor

# inches per panel, and per row (the titles take two lines)
PANEL_WIDTH, PANEL_HEIGHT = 1.1, 1.3
TITLE_SIZE, COLUMN_TITLE_SIZE, DPI = 7, 5, 130
FIGURE_DIGITS = 4


def save_saliency_grid(
    x: Tensor,
    source: Tensor,
    target: Tensor,
    maps: Mapping[tuple[str, str], Tensor],
    path: Path,
    digits: int = FIGURE_DIGITS,
) -> Path:
    """Row i: digit i (titled source->target), then its map for each `maps` key (method, in-fill)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns: Sequence[tuple[str, str]] = list(maps)
    rows = min(digits, len(x))
    fig, axes = plt.subplots(
        rows,
        len(columns) + 1,
        figsize=(PANEL_WIDTH * (len(columns) + 1), PANEL_HEIGHT * rows),
        squeeze=False,
    )
    for i in range(rows):
        axes[i, 0].imshow(x[i, 0], cmap="gray")
        axes[i, 0].set_title(f"{int(source[i])}->{int(target[i])}", fontsize=TITLE_SIZE)
        for j, key in enumerate(columns, start=1):
            axes[i, j].imshow(maps[key][i, 0], cmap="hot", vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(f"{key[0]}\n{key[1]}", fontsize=COLUMN_TITLE_SIZE)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
