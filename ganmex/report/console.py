"""The results as a rich table in the terminal: metric x method rows, baselines across, best in bold."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ganmex.report.tables import best_flags, format_cell, metric_direction, pivot

PIPE_WIDTH = 160


def results_table(
    frame: pd.DataFrame,
    rows: Sequence[str] = ("metric", "method"),
    columns: str = "baseline",
    title: str = "evaluation results",
    digits: int = 3,
    show_ci: bool = False,
) -> Table:
    """A rich Table of aggregated results; a rule separates metrics, the best cell per row is bold green.

    Means only by default, to fit a terminal (results.md and results.csv carry the intervals).
    """
    if "metric" not in rows:
        raise ValueError(f"rows={list(rows)} must include 'metric' so each row compares one metric")
    order = {name: i for i, name in enumerate(dict.fromkeys(frame["metric"]))}
    frame = frame.sort_values("metric", key=lambda col: col.map(order), kind="stable")
    row_keys, column_values, cells = pivot(frame, rows, columns)
    caption = (
        "mean ± CI half-width" if show_ci else "mean"
    ) + "; ↑ higher / ↓ lower is better; best in green"
    table = Table(title=title, caption=caption, header_style="bold", box=box.SIMPLE_HEAD)
    for name in rows:
        table.add_column(name, style="cyan" if name == "metric" else None, overflow="fold", min_width=8)
    for value in column_values:
        table.add_column(str(value), justify="right", overflow="fold", min_width=digits + 3)
    metric_at = list(rows).index("metric")
    for index, key in enumerate(row_keys):
        direction = metric_direction(key[metric_at])
        row_cells = [cells[key].get(c) for c in column_values]
        means = [c["mean"] if c is not None else math.nan for c in row_cells]
        texts = []
        for cell, best in zip(row_cells, best_flags(means, direction), strict=True):
            if cell is None:
                text = "—"
            elif show_ci:
                text = format_cell(cell["mean"], cell["ci_low"], cell["ci_high"], digits)
            else:
                text = format_cell(cell["mean"], math.nan, math.nan, digits)
            texts.append(Text(text, style="bold green" if best else ""))
        first_of_metric = index == 0 or row_keys[index - 1][metric_at] != key[metric_at]
        labels = [str(k) for k in key]
        arrow = "" if direction is None else (" ↑" if direction else " ↓")
        labels[metric_at] = labels[metric_at] + arrow if first_of_metric else ""
        last_of_metric = index + 1 == len(row_keys) or row_keys[index + 1][metric_at] != key[metric_at]
        table.add_row(*(Text(label) for label in labels), *texts, end_section=last_of_metric)
    return table


def print_results(frame: pd.DataFrame, console: Console | None = None, **kwargs) -> Table:
    """Print `results_table(frame, **kwargs)` (to stdout unless a console is given) and return it.

    Piped or logged output gets `PIPE_WIDTH` columns instead of rich's 80, so the table is not folded.
    """
    table = results_table(frame, **kwargs)
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=PIPE_WIDTH)
    console.print(table)
    return table
