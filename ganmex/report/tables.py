"""Aggregate per-example records into `results.csv` and the `results.md` pivot tables.

Direction of "better" comes from the records: each carries `higher_is_better`, which the evaluation stage
takes from the metric class's `output_directions` (one source). `aggregate` copies it into the
`higher_is_better` column, which everything downstream reads. A metric without one is still aggregated
and shown, but nothing is bolded, its header says "direction unknown", and one warning is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ganmex.report.records import Record, write_text_atomic

log = logging.getLogger(__name__)

KEYS = ("method", "baseline", "metric")
STAT_COLUMNS = ("mean", "std", "ci_low", "ci_high", "ci_level", "n", "n_nonfinite", "higher_is_better")
COLUMNS = (*KEYS, *STAT_COLUMNS)
DEFAULT_CONFIDENCE = 0.95


def as_direction(value: object) -> bool | None:
    """A `higher_is_better` cell as True/False/None (it reads back from CSV as a string or NaN)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def record_directions(records: Iterable[Record]) -> dict[str, bool | None]:
    """Each metric's direction as its records carry it; records of one metric must agree."""
    found: dict[str, bool | None] = {}
    for record in records:
        known = found.get(record.metric)
        if record.higher_is_better is None:
            found.setdefault(record.metric, None)
        elif known is None:
            found[record.metric] = record.higher_is_better
        elif known != record.higher_is_better:
            raise ValueError(
                f"records of metric {record.metric!r} disagree on higher_is_better; declare the direction "
                f"once in the metric class's output_directions"
            )
    return found


def frame_directions(frame: pd.DataFrame) -> dict[str, bool | None]:
    """metric -> direction from an aggregated frame's `higher_is_better` column (None where unknown)."""
    out: dict[str, bool | None] = {}
    column = frame["higher_is_better"] if "higher_is_better" in frame else [None] * len(frame)
    for metric, value in zip(frame["metric"], column, strict=True):
        if out.get(metric) is None:
            out[metric] = as_direction(value)
    return out


def _warn_unknown(directions: dict[str, bool | None]) -> None:
    for name, direction in directions.items():
        if direction is None and name not in _warned_unknown:
            _warned_unknown.add(name)
            log.warning(
                "metric %r has no direction in its records: shown without a best value in bold "
                "(declare it in its metric class's output_directions)",
                name,
            )


_warned_unknown: set[str] = set()


def summary_stats(values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """Mean, sample std (ddof=1) and a Student-t confidence interval of the finite values.

    n=1 gives std and CI = NaN (no spread can be estimated); non-finite values are dropped and counted.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1), e.g. 0.95")
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else math.nan
    std = float(finite.std(ddof=1)) if n > 1 else math.nan
    return {
        "mean": mean,
        "std": std,
        **_interval(mean, std, n, confidence),
        "n": n,
        "n_nonfinite": int(array.size - n),
    }


def _interval(mean: float, std: float, n: int, confidence: float) -> dict:
    if n < 2 or not math.isfinite(std):
        low = high = math.nan
    else:
        half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"ci_low": low, "ci_high": high, "ci_level": confidence}


def aggregate(records: Iterable[Record], confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """One row per method x baseline x metric (in first-seen order) with mean, std, CI and n."""
    records = list(records)
    directions = record_directions(records)
    _warn_unknown(directions)
    groups: dict[tuple[str, str, str], list[float]] = {}
    for record in records:
        groups.setdefault((record.method, record.baseline, record.metric), []).append(record.value)
    rows = []
    for (method, baseline, metric), values in groups.items():
        rows.append(
            {
                "method": method,
                "baseline": baseline,
                "metric": metric,
                **summary_stats(values, confidence),
                "higher_is_better": directions[metric],
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def pool(frame: pd.DataFrame, keys: Sequence[str], confidence: float | None = None) -> pd.DataFrame:
    """Merge rows with equal `keys` (e.g. the same cell of several seeds' results.csv) into one row.

    Exact for mean and std: the result equals aggregating the concatenated per-example values, since
    sum of squares = sum((n_i - 1) s_i^2 + n_i (m_i - M)^2). Adds `n_runs`, the number of rows merged.
    """
    missing = [c for c in (*keys, "mean", "std", "n") if c not in frame.columns]
    if missing:
        raise KeyError(f"cannot pool: columns {missing} missing (have {list(frame.columns)})")
    if confidence is not None:
        level = confidence
    else:
        level = float(frame["ci_level"].iloc[0]) if "ci_level" in frame and len(frame) else DEFAULT_CONFIDENCE
    directions = frame_directions(frame)
    rows = []
    for key, part in frame.groupby(list(keys), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        part = part[part["n"] > 0]
        n = int(part["n"].sum())
        if n == 0:
            mean, std = math.nan, math.nan
        else:
            counts, means = part["n"].to_numpy(float), part["mean"].to_numpy(float)
            stds = np.nan_to_num(part["std"].to_numpy(float), nan=0.0)
            mean = float((counts * means).sum() / n)
            squares = ((counts - 1) * stds**2 + counts * (means - mean) ** 2).sum()
            std = float(math.sqrt(squares / (n - 1))) if n > 1 else math.nan
        row = dict(zip(keys, key, strict=True))
        metric = row.get("metric")
        row.update(
            {
                "mean": mean,
                "std": std,
                **_interval(mean, std, n, level),
                "n": n,
                "n_nonfinite": int(part["n_nonfinite"].sum()) if "n_nonfinite" in part else 0,
                "higher_is_better": directions.get(metric) if metric is not None else None,
                "n_runs": int(len(part)),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def write_results_csv(frame: pd.DataFrame, path) -> None:
    """`results.csv` at full float precision, written atomically."""
    write_text_atomic(path, frame.to_csv(index=False))


def read_results_csv(path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
    missing = [c for c in (*KEYS, "mean", "std", "n") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a results.csv: columns {missing} are missing")
    for column in KEYS:
        frame[column] = frame[column].astype(str)
    return frame


def format_cell(mean: float, low: float, high: float, digits: int = 4) -> str:
    """`mean ± CI half-width`, or just the mean where no interval exists (n=1)."""
    if not math.isfinite(mean):
        return "nan"
    if math.isfinite(low) and math.isfinite(high):
        return f"{mean:.{digits}g} ± {(high - low) / 2:.2g}"
    return f"{mean:.{digits}g}"


def direction_label(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return "direction unknown"
    return "higher is better" if higher_is_better else "lower is better"


def best_flags(means: Sequence[float], higher_is_better: bool | None) -> list[bool]:
    """Which entries hold the best finite value (ties all count); none when the direction is unknown."""
    values = np.asarray(means, dtype=np.float64)
    finite = np.isfinite(values)
    if higher_is_better is None or not finite.any():
        return [False] * len(values)
    best = values[finite].max() if higher_is_better else values[finite].min()
    return [bool(f and v == best) for f, v in zip(finite, values, strict=True)]


def pivot(
    frame: pd.DataFrame, rows: Sequence[str], columns: str = "baseline"
) -> tuple[list[tuple], list[str], dict[tuple, dict[str, pd.Series]]]:
    """Row keys and column values (first-seen order) and cell rows of `frame` laid out as a pivot."""
    row_keys: list[tuple] = []
    column_values: list[str] = []
    cells: dict[tuple, dict[str, pd.Series]] = {}
    for _, item in frame.iterrows():
        key = tuple(item[r] for r in rows)
        if key not in cells:
            row_keys.append(key)
            cells[key] = {}
        if item[columns] not in column_values:
            column_values.append(item[columns])
        if item[columns] in cells[key]:
            raise ValueError(
                f"two rows for {dict(zip(rows, key, strict=True))} and {columns}={item[columns]}; "
                f"pool them first (ganmex.report.tables.pool)"
            )
        cells[key][item[columns]] = item
    return row_keys, column_values, cells


def markdown_table(
    header: Sequence[str], body: Iterable[Sequence[str]], right_aligned: Sequence[bool] = ()
) -> list[str]:
    """A markdown table's lines; `right_aligned[i]` right-aligns column i (numbers)."""
    rules = ["---:" if i < len(right_aligned) and right_aligned[i] else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def markdown_pivot(
    frame: pd.DataFrame,
    section: str = "metric",
    rows: Sequence[str] = ("method",),
    columns: str = "baseline",
    digits: int = 4,
) -> str:
    """One markdown table per value of `section`; `columns` across, best cell of each row in bold.

    Every row of a table must hold a single metric, so `metric` must be the section or a row key.
    """
    if "metric" != section and "metric" not in rows:
        raise ValueError(
            f"section={section!r}, rows={list(rows)}: put 'metric' in section or rows so "
            f"each row compares values of one metric"
        )
    directions = frame_directions(frame)
    out: list[str] = []
    for value in dict.fromkeys(frame[section]):
        part = frame[frame[section] == value]
        row_keys, column_values, cells = pivot(part, rows, columns)
        if section == "metric":
            out.append(f"### {value} ({direction_label(directions.get(value))})")
        else:
            out.append(f"### {section} = {value}")
        body = []
        for key in row_keys:
            row_cells = [cells[key].get(c) for c in column_values]
            metric = value if section == "metric" else key[list(rows).index("metric")]
            direction = directions.get(metric)
            means = [c["mean"] if c is not None else math.nan for c in row_cells]
            texts = [
                format_cell(c["mean"], c["ci_low"], c["ci_high"], digits) if c is not None else "—"
                for c in row_cells
            ]
            texts = [
                f"**{t}**" if best else t for t, best in zip(texts, best_flags(means, direction), strict=True)
            ]
            labels = [_row_label(r, k, directions) for r, k in zip(rows, key, strict=True)]
            body.append(labels + texts)
        out += ["", *markdown_table([*rows, *column_values], body), ""]
    return "\n".join(out)


def metric_pivots(frame: pd.DataFrame, metrics: Sequence[str], source: object = "the results") -> str:
    """One pivot per chosen metric (methods as rows, baselines across); one clear line naming what is
    available when none of `metrics` is in the frame."""
    chosen = frame[frame.metric.isin(metrics)]
    if chosen.empty:
        raise ValueError(f"none of {list(metrics)} in {source}; available: {sorted(frame.metric.unique())}")
    return markdown_pivot(chosen, "metric", ("method",))


def _row_label(name: str, value: object, directions: dict[str, bool | None]) -> str:
    if name == "metric":
        direction = directions.get(str(value))
        arrow = "" if direction is None else (" ↑" if direction else " ↓")
        return f"{value}{arrow}"
    return str(value)


def results_markdown(
    frame: pd.DataFrame, layout: str = "metric", title: str = "Results", leaderboard: str = ""
) -> str:
    """`results.md`: the leaderboard section (if given), then a pivot per metric (rows: methods) or per
    method (rows: metrics), baselines across."""
    layouts = {"metric": ("metric", ("method",)), "method": ("method", ("metric",))}
    if layout not in layouts:
        raise ValueError(f"layout={layout!r} is not one of {sorted(layouts)}")
    section, rows = layouts[layout]
    level = float(frame["ci_level"].iloc[0]) if len(frame) else DEFAULT_CONFIDENCE
    head = f"# {title}\n\n" + (leaderboard.rstrip() + "\n\n" if leaderboard else "")
    intro = (
        f"## All metrics\n\nCells: mean ± half-width of the {level:.0%} Student-t confidence interval "
        f"over n examples (n and the interval bounds are in results.csv). Baselines are columns; "
        f"the best baseline of each row is in **bold** (↑ higher is better, ↓ lower is better).\n\n"
    )
    return head + intro + markdown_pivot(frame, section, rows)


def write_results_markdown(
    frame: pd.DataFrame, path, layout: str = "metric", title: str = "Results", leaderboard: str = ""
) -> None:
    write_text_atomic(path, results_markdown(frame, layout, title, leaderboard))
