"""Compare finished runs offline: collect run dirs, group them by their Hydra overrides, pool and plot.

A run dir is any folder holding `results.csv` (written by the evaluation stage); its
`.hydra/overrides.yaml` names what was changed from the defaults. Runs with the same overrides (after
dropping the keys in `pool`, e.g. `seed`) form one group, whose per-cell statistics are pooled exactly.
Groups are labelled by the override keys whose values differ between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ganmex.report.records import CURVES_FILE, Curve, SanityCurve, read_curves_json
from ganmex.report.tables import KEYS, pool, read_results_csv

log = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
OVERRIDES = Path(".hydra") / "overrides.yaml"
ALL_RUNS = "all runs"
PARETO_NOTE = "front: no other row is at least as good on every column and better on one"


@dataclass
class Run:
    """One finished run: where it is, what it overrode, what it measured."""

    path: Path
    overrides: dict[str, str]
    results: pd.DataFrame
    curves: list[Curve] = field(default_factory=list)
    sanity: list[SanityCurve] = field(default_factory=list)
    group: str = ALL_RUNS


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """Hydra override strings -> {key: value}; `+k=v`/`++k=v` count as `k=v`, `~k` as `k=<deleted>`."""
    parsed: dict[str, str] = {}
    for line in lines:
        text = str(line).strip()
        if text.startswith("~"):
            key, _, value = text[1:].partition("=")
            parsed[key] = "<deleted>" if not value else f"<deleted {value}>"
            continue
        key, sep, value = text.lstrip("+").partition("=")
        if not sep:
            raise ValueError(f"override {text!r} is not of the form key=value")
        parsed[key] = value
    return parsed


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder under `root` (itself included) that holds a results.csv, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"runs folder {root} does not exist; pass the folder holding your run dirs "
            f"(e.g. outputs/train/multiruns/<date>)"
        )
    return sorted(p.parent for p in root.rglob(RESULTS_CSV) if not p.parent.name.endswith(".partial"))


def load_run(path: str | Path) -> Run:
    """Read a run dir's results.csv, overrides (empty if absent) and curves.json (if present)."""
    path = Path(path)
    if not (path / RESULTS_CSV).is_file():
        raise FileNotFoundError(f"no {RESULTS_CSV} in {path}; is this a finished evaluation run?")
    overrides: dict[str, str] = {}
    if (path / OVERRIDES).is_file():
        overrides = parse_overrides(yaml.safe_load((path / OVERRIDES).read_text()) or [])
    else:
        log.warning("%s has no %s: treated as a run with default settings", path, OVERRIDES)
    curves, sanity = read_curves_json(path / CURVES_FILE) if (path / CURVES_FILE).is_file() else ([], [])
    return Run(path, overrides, read_results_csv(path / RESULTS_CSV), curves, sanity)


def varying_keys(runs: Sequence[Run], pooled: Sequence[str] = ()) -> list[str]:
    """Override keys (in first-seen order) whose value is not the same in every run, minus `pooled`."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides if k not in pooled))
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def assign_groups(runs: Sequence[Run], pooled: Sequence[str] = ()) -> list[str]:
    """Label each run by its varying overrides (`k=v,k2=v2`); returns the varying keys."""
    keys = varying_keys(runs, pooled)
    for run in runs:
        parts = [f"{k}={run.overrides.get(k, '<default>')}" for k in keys]
        run.group = ",".join(parts) if parts else ALL_RUNS
    return keys


def compare(runs: Sequence[Run], pooled: Sequence[str] = (), confidence: float | None = None) -> pd.DataFrame:
    """One row per group x method x baseline x metric, pooled over the group's runs (`n_runs`).

    Columns: `group`, one column per varying override key, then results.csv's columns and `n_runs`.
    """
    if not runs:
        raise ValueError("no runs to compare: no results.csv found")
    keys = assign_groups(runs, pooled)
    parts = []
    for run in runs:
        frame = run.results.copy()
        frame.insert(0, "group", run.group)
        for position, key in enumerate(keys, start=1):
            frame.insert(position, key, run.overrides.get(key, "<default>"))
        parts.append(frame)
    return pool(pd.concat(parts, ignore_index=True), ["group", *keys, *KEYS], confidence)


def _average(items: list, values_of, axis_of) -> tuple[tuple, np.ndarray, int] | None:
    """n-weighted mean of curves sharing an x axis; None if the runs used different axes."""
    axes = {tuple(axis_of(item)) for item in items}
    if len(axes) != 1:
        return None
    weights = np.array([item.n for item in items], dtype=np.float64)
    values = np.array([values_of(item) for item in items], dtype=np.float64)
    return axes.pop(), (weights[:, None] * values).sum(0) / weights.sum(), int(weights.sum())


def pooled_curves(runs: Sequence[Run]) -> tuple[list[Curve], list[str], list[SanityCurve], list[str]]:
    """Curves and sanity curves averaged within each group (weighted by n), with their group labels."""
    curve_sets: dict[tuple, list[Curve]] = {}
    sanity_sets: dict[tuple, list[SanityCurve]] = {}
    for run in runs:
        for c in run.curves:
            curve_sets.setdefault((run.group, c.kind, c.reference, c.method, c.baseline), []).append(c)
        for s in run.sanity:
            sanity_sets.setdefault((run.group, s.method, s.baseline), []).append(s)
    curves, curve_groups, sanity, sanity_groups = [], [], [], []
    for key, items in curve_sets.items():
        merged = _average(items, lambda c: c.scores, lambda c: c.fractions)
        if merged is None:
            log.warning("curves %s use different fractions across runs: not averaged, not plotted", key)
            continue
        axis, mean, n = merged
        curves.append(replace(items[0], fractions=axis, scores=tuple(mean.tolist()), n=n))
        curve_groups.append(key[0])
    for key, items in sanity_sets.items():
        merged = _average(items, lambda s: s.spearman, lambda s: s.layers)
        if merged is None:
            log.warning("sanity curves %s randomise different layers across runs: not plotted", key)
            continue
        axis, mean, n = merged
        sanity.append(replace(items[0], layers=axis, spearman=tuple(mean.tolist()), n=n))
        sanity_groups.append(key[0])
    return curves, curve_groups, sanity, sanity_groups


def comparison_markdown(frame: pd.DataFrame, runs: Sequence[Run], columns: str = "baseline") -> str:
    """comparison.md: the runs and their groups, then one pivot per metric."""
    from ganmex.report.tables import markdown_pivot

    layouts = {"baseline": ("group", "method"), "group": ("method", "baseline")}
    if columns not in layouts:
        raise ValueError(f"columns={columns!r} is not one of {sorted(layouts)}")
    level = float(frame["ci_level"].iloc[0]) if len(frame) else 0.95
    lines = ["# Comparison of runs", "", "| run | group |", "|---|---|"]
    lines += [f"| {run.path} | {run.group} |" for run in runs]
    lines += [
        "",
        f"Cells: mean ± half-width of the {level:.0%} Student-t interval, pooled over the runs of a "
        f"group (n and n_runs are in comparison.csv); best cell of each row in **bold**.",
        "",
    ]
    return "\n".join(lines) + "\n" + markdown_pivot(frame, "metric", layouts[columns], columns)


def build_report(
    root: str | Path,
    out: str | Path | None = None,
    pooled: Sequence[str] = (),
    columns: str = "baseline",
    console: bool = True,
) -> dict[str, Path | None]:
    """Collect the runs under `root` and write comparison.csv/.md, curves.png and sanity.png to `out`;
    with counterfactual quantities (mode=gan_quality), also pareto.csv, its rows marked on the front."""
    from ganmex.report.console import print_results
    from ganmex.report.pareto import pareto_markdown, pareto_table
    from ganmex.report.plots import plot_curves, plot_sanity
    from ganmex.report.records import write_text_atomic
    from ganmex.report.tables import write_results_csv

    runs = [load_run(path) for path in find_run_dirs(root)]
    if not runs:
        raise FileNotFoundError(
            f"no {RESULTS_CSV} under {root}; run the evaluation stage first "
            f"(python train.py ... or python evaluate.py ...)"
        )
    out = Path(out) if out is not None else Path(root) / "report"
    out.mkdir(parents=True, exist_ok=True)
    frame = compare(runs, pooled)
    files: dict[str, Path | None] = {"csv": out / "comparison.csv", "md": out / "comparison.md"}
    write_results_csv(frame, files["csv"])
    markdown = comparison_markdown(frame, runs, columns)
    front = pareto_table(frame)
    if front is not None:
        files["pareto"] = out / "pareto.csv"
        write_text_atomic(files["pareto"], front.to_csv(index=False))
        markdown += f"\n## Pareto front\n\n{PARETO_NOTE}\n\n{pareto_markdown(front)}"
    write_text_atomic(files["md"], markdown)
    curves, curve_groups, sanity, sanity_groups = pooled_curves(runs)
    several = len({run.group for run in runs}) > 1
    files["curves"] = plot_curves(curves, out / "curves.png", curve_groups if several else None)
    files["sanity"] = plot_sanity(sanity, out / "sanity.png", sanity_groups if several else None)
    if console:
        rows = ("metric", "group", "method") if columns == "baseline" else ("metric", "method", "baseline")
        print_results(
            frame,
            rows=rows,
            columns="baseline" if columns == "baseline" else "group",
            title=f"{len(runs)} runs under {root}",
        )
        if front is not None:
            print(f"\nPareto front ({PARETO_NOTE})\n{pareto_markdown(front)}")
    log.info("compared %d runs in %d groups: %s", len(runs), len({r.group for r in runs}), out)
    return files
