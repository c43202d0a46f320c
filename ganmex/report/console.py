"""The results in the terminal: the compact leaderboard a run ends with (`print_leaderboard`), and the full
metric x method table (`print_results`, used by scripts/report.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ganmex.report.leaderboard import MARK, Leaderboard, _name, _value, _vs_next
from ganmex.report.tables import best_flags, format_cell, frame_directions, pivot

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
    directions = frame_directions(frame)
    for index, key in enumerate(row_keys):
        direction = directions.get(key[metric_at])
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


LEADERBOARD_WIDTH = 100
# short column labels for the terminal (a legend under the tables gives the full names)
SHORT_STEMS = {
    "deletion_auc": "del",
    "deletion_auc_raw": "del_raw",
    "insertion_auc_raw": "ins_raw",
    "insertion_auc": "ins",
    "flip_fraction": "flip",
    "relevance_mass_accuracy": "mass",
    "relevance_rank_accuracy": "rank",
    "pointing_game": "point",
    "localisation_auc": "loc",
}


def short_label(metric: str) -> str:
    stem, at, reference = metric.partition("@")
    return SHORT_STEMS.get(stem, stem) + at + reference


def leaderboard_tables(board: Leaderboard) -> list[Table]:
    """One small rich table per method: rank, baseline, mean rank, vs next, the headline means."""
    tables = []
    for method in board.boards:
        table = Table(
            title=f"{method.method}  (n={method.n_examples})", title_justify="left", box=box.SIMPLE_HEAD
        )
        table.add_column("#", justify="right")
        table.add_column("baseline", style="cyan", no_wrap=True)
        table.add_column("mean rank", justify="right")
        table.add_column("vs next", justify="right")
        for metric in method.metrics:
            arrow = "↑" if method.directions[metric] else "↓"
            table.add_column(f"{short_label(metric)} {arrow}", justify="right", no_wrap=True)
        for i, entry in enumerate(method.entries):
            style = "bold green" if i == 0 else ""
            table.add_row(
                str(i + 1),
                Text(_name(entry), style=style),
                f"{entry.mean_rank:.2f}",
                _vs_next(entry, i + 1 == len(method.entries)),
                *(_value(entry, m) for m in method.metrics),
            )
        tables.append(table)
    return tables


def print_leaderboard(
    board: Leaderboard, paths: Sequence[object] = (), console: Console | None = None
) -> None:
    """Print the leaderboard (one table per method), a legend, then the paths of the written files.

    `paths` are e.g. results.md and the figures; None entries (plots with nothing to draw) are skipped.
    """
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=LEADERBOARD_WIDTH)
    console.rule("leaderboard: baselines per method, best first")
    for table in leaderboard_tables(board):
        console.print(table)
    for method, why in board.skipped.items():
        console.print(f"{method}: not ranked, {why}", style="dim")
    metrics = dict.fromkeys(m for method in board.boards for m in method.metrics)
    if metrics:
        legend = ", ".join(f"{short_label(m)} = {m}" for m in metrics if short_label(m) != m)
        console.print(
            f"mean rank over the columns; paired Wilcoxon, Holm, alpha={board.alpha:g}: {MARK} on a value = "
            f"better than every other baseline, on a name = better than the next; vs next = +better/-worse"
            + (f"\n{legend}" if legend else ""),
            style="dim",
        )
    for path in paths:
        if path is not None:
            console.print(f"  {path}")
