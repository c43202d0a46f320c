"""Condense a run's results.csv into the headline pivot tables of docs/results.md.

Usage: python scripts/results_table.py outputs/results_mnist_test/results.csv [--metrics m1 m2 ...]
(default: the headline metrics, ganmex.report.leaderboard.DEFAULT_HEADLINE)
Prints markdown: one table per metric, methods as rows, baselines as columns, best in bold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganmex.report.leaderboard import DEFAULT_HEADLINE
from ganmex.report.tables import metric_pivots, read_results_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.csv of an evaluation run")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_HEADLINE))
    args = parser.parse_args()
    try:
        print(metric_pivots(read_results_csv(args.results), args.metrics, args.results))
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
