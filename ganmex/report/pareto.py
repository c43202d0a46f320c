"""The Pareto front of compared runs: which rows no other row beats on every counterfactual quantity.

Choosing a GAN setting trades validity against proximity and realism; a row is worth keeping only when no
other row is at least as good on every column and strictly better on one. `scripts/report.py` marks those
rows in a `front` column (docs/gan.md, "Choosing the defaults").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ganmex.report.tables import frame_directions, markdown_table

# the counterfactual quantities a GAN setting is chosen on (ganmex.metrics.counterfactual)
PARETO_METRICS = ("validity", "oracle_validity", "proximity_l1", "fid")
# fewer compared columns than this is a ranking, not a trade-off
MIN_PARETO_COLUMNS = 2
FRONT = "front"


def pareto_front(table: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> pd.Series:
    """True for each row that no other row dominates on the columns of `higher_is_better`.

    Row j dominates row i when j is at least as good as i on every column and strictly better on one.
    A missing (NaN) value is worse than any number, so it never puts a row on the front by itself.
    """
    missing = [column for column in higher_is_better if column not in table.columns]
    if missing:
        raise KeyError(f"pareto_front: columns {missing} are not in the table (have {list(table.columns)})")
    signs = np.array([1.0 if higher_is_better[c] else -1.0 for c in higher_is_better])
    scores = table[list(higher_is_better)].to_numpy(dtype=np.float64) * signs  # higher is better everywhere
    scores = np.where(np.isnan(scores), -np.inf, scores)
    at_least = (scores[:, None, :] >= scores[None, :, :]).all(-1)  # [j, i]: j >= i on every column
    better = (scores[:, None, :] > scores[None, :, :]).any(-1)
    dominated = (at_least & better).any(0)
    return pd.Series(~dominated, index=table.index, name=FRONT)


def pareto_table(
    frame: pd.DataFrame, rows: Sequence[str] = ("group", "method", "baseline"), metrics=PARETO_METRICS
) -> pd.DataFrame | None:
    """A comparison frame (one row per group x method x baseline x metric) as one row per `rows` with a
    column of means per metric present and the `front` flag; None when fewer than two metrics are there."""
    chosen = [m for m in metrics if m in set(frame["metric"])]
    if len(chosen) < MIN_PARETO_COLUMNS:
        return None
    directions = frame_directions(frame[frame["metric"].isin(chosen)])
    unknown = [m for m in chosen if directions.get(m) is None]
    if unknown:
        raise ValueError(
            f"metrics {unknown} carry no higher_is_better in the results; re-run the evaluation so that "
            f"the records declare their direction"
        )
    keys = [r for r in rows if r in frame.columns]
    wide = (
        frame[frame["metric"].isin(chosen)]
        .pivot_table(index=keys, columns="metric", values="mean", aggfunc="first", dropna=False)
        .reindex(columns=chosen)
        .reset_index()
    )
    wide.columns.name = None
    wide[FRONT] = pareto_front(wide, {m: bool(directions[m]) for m in chosen})
    return wide


def pareto_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """The Pareto table as markdown, front rows marked `yes`."""

    def cell(column: str, value: object) -> str:
        if column == FRONT:
            return "yes" if value else ""
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    body = [[cell(c, row[c]) for c in table.columns] for _, row in table.iterrows()]
    return "\n".join(markdown_table(list(table.columns), body)) + "\n"
