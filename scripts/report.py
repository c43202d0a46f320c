"""Rebuild the comparison tables and plots from a folder of finished runs, without W&B.

    python scripts/report.py outputs/train/multiruns/<date> [--out DIR] [--pool seed] [--columns group]

Writes comparison.csv, comparison.md, curves.png and sanity.png (default: <runs>/report/) and prints
the table; runs of mode=gan_quality also get pareto.csv, whose `front` column marks the Pareto front.
See docs/report.md.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="folder searched recursively for run dirs holding results.csv")
    parser.add_argument("--out", default=None, help="output folder (default: <runs>/report)")
    parser.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="KEY",
        help="override key whose runs are merged into one group, e.g. seed (repeatable)",
    )
    parser.add_argument(
        "--columns",
        choices=("baseline", "group"),
        default="baseline",
        help="what goes across the tables: baselines (rows: group x method) or groups "
        "(rows: method x baseline)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from ganmex.report.runs import build_report

    try:
        files = build_report(args.runs, args.out, args.pool, args.columns, console=not args.quiet)
    except (FileNotFoundError, ValueError) as error:
        logging.getLogger("report").error("%s", error)
        return 1
    for name, path in files.items():
        print(f"{name}: {path if path is not None else '(nothing to plot)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
