"""Write docs/results.md from the runs of scripts/reproduce_results.sh (ganmex.report.results_page).

python scripts/results_page.py --out docs/results.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganmex.report.leaderboard import DEFAULT_HEADLINE
from ganmex.report.results_page import Section, results_page

COUNTERFACTUAL = ("validity", "oracle_validity", "proximity_l1", "change_sparsity", "edit_in_mask", "fid")
MNIST = "eval_dataset=mnist eval_dataset.root=$MNIST_ROOT eval_dataset.download=false"
SECTIONS = (
    Section(
        "Faithfulness on 100 real MNIST test digits",
        f"python evaluate.py {MNIST} evaluation.num_images=100 hydra.run.dir=outputs/results_mnist_test",
        Path("outputs/results_mnist_test"),
        (*DEFAULT_HEADLINE, "flip_fraction@baseline", "faithfulness_correlation@blur", "sanity_spearman"),
    ),
    Section(
        "Counterfactuals: GANMEX vs MDTS on 1,000 real test digits x 9 targets",
        f"python evaluate.py mode=gan_quality {MNIST} evaluation.num_images=1000 "
        "hydra.run.dir=outputs/gan_quality_mnist_test",
        Path("outputs/gan_quality_mnist_test"),
        COUNTERFACTUAL,
        leaderboard=False,
    ),
    Section(
        "Ground truth: decoy MNIST (the class is carried by a corner swatch only)",
        "python train.py experiment=decoy_mnist hydra.run.dir=outputs/decoy_run",
        Path("outputs/decoy_run"),
        (*DEFAULT_HEADLINE, *COUNTERFACTUAL),
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    args.out.write_text(results_page(SECTIONS))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
