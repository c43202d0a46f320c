"""docs/results.md, written from finished run directories: what `scripts/reproduce_results.sh` regenerates.

Each section is one run of the shipping defaults: its command, the leaderboard over the headline metrics
(from the run's records, with the paired tests) and pivot tables of chosen metrics (from its results.csv).
Nothing on the page is typed by hand, so it cannot go stale against the runs that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ganmex.report.leaderboard import DEFAULT_HEADLINE, build_leaderboard, leaderboard_markdown
from ganmex.report.records import EvalResults
from ganmex.report.tables import markdown_pivot, read_results_csv

TITLE = "# Results: which baseline gives the more faithful one-vs-one attributions?"
INTRO = (
    "Every number below is written by `scripts/reproduce_results.sh` from the runs it makes with the "
    "shipping defaults; rerun it to refresh the page. How to read the tables: [report.md](report.md)."
)


@dataclass(frozen=True)
class Section:
    """One run's part of the page: `run_dir` holds results.csv (and records.jsonl for a leaderboard)."""

    title: str
    command: str
    run_dir: Path
    metrics: Sequence[str] = ()
    leaderboard: bool = True


def section_markdown(section: Section) -> str:
    run_dir = Path(section.run_dir)
    csv = run_dir / "results.csv"
    if not csv.is_file():
        raise FileNotFoundError(
            f"{csv} is missing: run `{section.command}` first (scripts/reproduce_results.sh)"
        )
    parts = [f"## {section.title}", "", f"```bash\n{section.command}\n```", ""]
    if section.leaderboard:
        parts += [leaderboard_markdown(build_leaderboard(EvalResults.load(run_dir).records)), ""]
    frame = read_results_csv(csv)
    chosen = frame[frame.metric.isin(section.metrics)]
    if len(chosen):
        parts += [markdown_pivot(chosen, "metric", ("method",)), ""]
    return "\n".join(parts)


def results_page(sections: Sequence[Section]) -> str:
    return "\n\n".join([TITLE, INTRO, *(section_markdown(s) for s in sections)]).rstrip() + "\n"


# the shipped page: one section per run of scripts/reproduce_results.sh
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
