"""Write docs/results.md from the runs of scripts/reproduce_results.sh (ganmex.report.results_page).

python scripts/results_page.py --out docs/results.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganmex.report.results_page import SECTIONS, results_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    try:
        args.out.write_text(results_page(SECTIONS))
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
