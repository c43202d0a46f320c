"""Reproduce docs/gan.md's Pareto table: train each GAN setting, score it, mark the non-dominated rows.

Each setting is a list of `python train.py` overrides; every one trains with `stage=gan` (the classifier
artifact is shared, the GAN artifact is reused when its config hash already exists) and is scored by
scripts/measure_gan.py on real MNIST test digits (x every target), judged by f and the oracle g.
A row is on the Pareto front when no other row is at least as good on validity, oracle validity,
L1 and oracle-FID and better on one of them.

    python scripts/pareto_gan.py --oracle outputs/artifacts/oracle-<hash> \
        --classifier outputs/artifacts/classifier-<hash> [--only default,default_seed1,direct] \
        [--oracle-colored outputs/artifacts/oracle-<coloured hash>] [--n 1000] [--out pareto.json]
    python scripts/pareto_gan.py --oracle ... --out pareto.json --table   # print, train nothing

Training is deterministic for a given config, seed and thread count (the same row trained twice gives
the same numbers), so a row's measurement stands until its config or the code behind it changes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_MASK = {"gan.loss.lambda_mask": "0", "gan.loss.lambda_tv": "0"}
# name -> overrides of conf/gan/stargan.yaml as it is (None: the default itself). Values are written as
# the runs were (20.0 and 20 hash differently), so finished artifacts are reused.
# The default until 2026-12-02's second round: 4,000 batches, λ_sim 30 (the rows measured then keep it).
FOUR_K = {"gan.trainer.max_steps": "8000", "gan.loss.lambda_sim": "30"}
# ... and before it took the worst of two dropout draws of f: one draw
ONE_DRAW = {**FOUR_K, "gan.loss.cls_dropout_worst_of": "1"}
PREVIOUS_DEFAULT = {**ONE_DRAW, "gan.lr_decay_from": "null", "gan.loss.cls_dropout": "false"}
SETTINGS: dict[str, dict[str, str] | None] = {
    "default": None,
    # the same default with other GAN seeds against one classifier (--classifier): the run-to-run spread
    "default_seed1": {"seed": "1"},
    "default_seed2": {"seed": "2"},
    # the default with the gradient penalty on every 4th critic step only (weighted 4x)
    "gp4": {"gan.loss.gp_every": "4"},
    # the default of 2026-12-02's first round: 4,000 batches, λ_sim 30
    "four_k": FOUR_K,
    "four_k_seed1": {**FOUR_K, "seed": "1"},
    "four_k_seed2": {**FOUR_K, "seed": "2"},
    # ... with λ_sim 35, and with the worst of three dropout draws of f as well
    "four_k_sim35": {**FOUR_K, "gan.loss.lambda_sim": "35"},
    "four_k_worst_of3_sim35": {**FOUR_K, "gan.loss.lambda_sim": "35", "gan.loss.cls_dropout_worst_of": "3"},
    # the default of 2026-11-24: f's dropout sampled once per image in the class loss
    "one_draw": ONE_DRAW,
    "one_draw_seed1": {**ONE_DRAW, "seed": "1"},
    "one_draw_seed2": {**ONE_DRAW, "seed": "2"},
    # the one-draw default with λ_sim 35
    "one_draw_sim35": {**ONE_DRAW, "gan.loss.lambda_sim": "35"},
    # the default before that round: constant learning rates, f's dropout off in the class loss
    "previous_default": PREVIOUS_DEFAULT,
    "previous_default_seed1": {**PREVIOUS_DEFAULT, "seed": "1"},
    # the decay alone (f's dropout off)
    "no_dropout": {**ONE_DRAW, "gan.loss.cls_dropout": "false"},
    "no_dropout_seed1": {**ONE_DRAW, "gan.loss.cls_dropout": "false", "seed": "1"},
    "one_draw_sim40": {**ONE_DRAW, "gan.loss.lambda_sim": "40"},
    # measured on the previous default: a per-class critic; the critic's weight doubled (every
    # other generator weight halved)
    "conditional_critic": {**PREVIOUS_DEFAULT, "gan.critic.conditional": "true"},
    "adv_x2": {
        **PREVIOUS_DEFAULT,
        "gan.loss.lambda_cls": "10",
        "gan.loss.lambda_sim": "15",
        "gan.loss.lambda_mask": "0.5",
        "gan.loss.lambda_tv": "0.5",
    },
    # measured on the one-draw default
    "ema": {**ONE_DRAW, "gan.ema_decay": "0.999"},
    "width8": {**ONE_DRAW, "gan.generator.conv_dim": "8"},
    "skips": {**ONE_DRAW, "gan.generator.skips": "true"},
    "direct": {**ONE_DRAW, "gan.generator.output": "direct", **NO_MASK},
    "half_budget": {**ONE_DRAW, "gan.trainer.max_steps": "4000"},
    "ganmex_reference": {"gan": "ganmex_reference"},
    # on dataset=mnist_colored: the one-draw default, then with the edit kept in x's own colour (no ink
    # of another hue), then today's default with it (what experiment=ganmex_mnist trains, at CPU size)
    "colored": ONE_DRAW,
    "colored_keep_palette": {**ONE_DRAW, "gan.generator.keep_palette": "true"},
    "colored_default_keep_palette": {"gan.generator.keep_palette": "true"},
}
COLORED = {"colored", "colored_keep_palette", "colored_default_keep_palette"}
SEEDED = {name for name, change in SETTINGS.items() if change and "seed" in change}


def overrides(name: str) -> list[str]:
    """train.py overrides of one setting."""
    extra = ["dataset=mnist_colored"] if name in COLORED else []
    change = SETTINGS[name] or {}
    if "gan" in change:  # a preset of the gan group: its own values
        return [f"gan={change['gan']}", *extra]
    return [f"{k}={v}" for k, v in change.items()] + extra


# column: (key in measure_gan's per-method dict, higher is better)
OBJECTIVES = {"validity": True, "oracle_validity": True, "l1_per_pixel": False, "fid": False}


def train(name: str, overrides: list[str], runs: Path) -> Path:
    """Run the GAN stage for one setting; returns its gan-<hash> artifact directory."""
    run_dir = runs / name
    cmd = [sys.executable, "train.py", "stage=gan", f"hydra.run.dir={run_dir}", *overrides]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    summary = json.loads((run_dir / "metrics.json").read_text())
    return Path(summary["stages"]["gan"]["artifact"])


def measure(gan_dir: Path, oracle: Path, n: int, out: Path) -> dict:
    """scripts/measure_gan.py's JSON for this artifact (kept in `out`; re-measured when it is another's)."""
    if out.is_file():
        done = json.loads(out.read_text())
        same = (done["gan_artifact"], done["oracle_artifact"], done["n_digits"]) == (
            str(gan_dir),
            str(oracle),
            n,
        )
        if same:
            return done
    cmd = [sys.executable, "scripts/measure_gan.py", "--gan", str(gan_dir), "--oracle", str(oracle)]
    cmd += ["--n", str(n), "--out", str(out)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(
        cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    return json.loads(out.read_text())


def dominates(a: dict, b: dict) -> bool:
    """a is at least as good as b on every objective and strictly better on one."""
    better = [(a[k] > b[k]) if up else (a[k] < b[k]) for k, up in OBJECTIVES.items()]
    worse = [(a[k] < b[k]) if up else (a[k] > b[k]) for k, up in OBJECTIVES.items()]
    return any(better) and not any(worse)


def pareto_rows(rows: dict[str, dict]) -> set[str]:
    return {n for n, r in rows.items() if not any(dominates(o, r) for m, o in rows.items() if m != n)}


def seed_means(rows: dict[str, dict]) -> dict[str, dict]:
    """One "<name> (mean of k seeds)" row per setting measured with several seeds (`<name>_seedN`)."""
    groups: dict[str, list[dict]] = {}
    for name, row in rows.items():
        groups.setdefault(name.split("_seed")[0], []).append(row)
    means = {}
    for base, members in groups.items():
        if len(members) > 1:
            mean = {k: sum(m[k] for m in members) / len(members) for k in MEAN_KEYS}
            mdts = {k: sum(m["mdts"][k] for m in members) / len(members) for k in MEAN_KEYS}
            means[f"{base} (mean of {len(members)} seeds)"] = {**mean, "mdts": mdts, "train_s": None}
    return means


MEAN_KEYS = ("validity", "oracle_validity", "l1_per_pixel", "changed_fraction", "fid")


def table(rows: dict[str, dict], front: set[str]) -> str:
    """Markdown rows; each row against its own MDTS (the seed changes the training split MDTS searches):
    oracle validity beside MDTS's, L1 and oracle-FID also as ratios to MDTS's (the targets are ratios)."""
    head = (
        "| setting | validity f | validity oracle (MDTS) | L1 (x MDTS) | changed px | oracle-FID (x MDTS) "
        "| train s | front |"
    )
    lines = [head, "|" + "---|" * 8]
    for name, r in rows.items():
        mdts = r["mdts"]
        mark = "yes" if name in front else ""
        seconds = f"{r['train_s']:.0f}" if r.get("train_s") else ""
        lines.append(
            f"| {name} | {r['validity']:.3f} | {r['oracle_validity']:.3f} ({mdts['oracle_validity']:.3f}) | "
            f"{r['l1_per_pixel']:.3f} ({r['l1_per_pixel'] / mdts['l1_per_pixel']:.2f}x) | "
            f"{r['changed_fraction']:.3f} | "
            f"{r['fid']:.2f} ({r['fid'] / mdts['fid']:.2f}x) | {seconds} | {mark} |"
        )
    return "\n".join(lines)


def print_tables(results: dict[str, dict]) -> None:
    """The grey and the coloured table, rows in SETTINGS order, the front marked within each."""
    for colored in (False, True):
        rows = {
            n: {**r["ganmex"], "mdts": r["mdts"], "train_s": r.get("gan_train_time_s")}
            for n, r in sorted(results.items(), key=lambda item: list(SETTINGS).index(item[0]))
            if r["colored"] == colored
        }
        if rows:  # the front compares rows of one seed (0): the seed moves a row by a few points
            front = pareto_rows({n: r for n, r in rows.items() if "_seed" not in n})
            print(table({**rows, **seed_means(rows)}, front), end="\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--oracle", type=Path, required=True, help="oracle artifact judging grey MNIST")
    parser.add_argument("--oracle-colored", type=Path, default=None, help="oracle for dataset=mnist_colored")
    parser.add_argument("--only", default=None, help="comma-separated setting names (default: all)")
    parser.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="classifier artifact every row trains against (the seed rows need it: only G's seed changes)",
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=Path, default=REPO / "outputs" / "pareto_gan")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "pareto_gan" / "pareto.json")
    parser.add_argument("--table", action="store_true", help="print the tables from --out; train nothing")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        sys.exit(f"--only: unknown setting(s) {unknown}; choose from {sorted(SETTINGS)}")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.table:
        print_tables({n: r for n, r in results.items() if n in names})
        return
    args.runs.mkdir(parents=True, exist_ok=True)
    for name in names:
        colored = name in COLORED
        oracle = args.oracle_colored if colored else args.oracle
        if oracle is None:
            sys.exit(f"setting {name} needs --oracle-colored (an oracle trained with dataset=mnist_colored)")
        if name in SEEDED and args.classifier is None:
            sys.exit(f"setting {name} changes the seed: pass --classifier so that f stays the same")
        # f is pinned for the grey rows; coloured rows train their own f on mnist_colored
        pin = args.classifier and not colored
        pinned = [f"classifier.artifact={args.classifier.resolve()}"] if pin else []
        gan_dir = train(name, overrides(name) + pinned, args.runs)
        results[name] = measure(gan_dir, oracle, args.n, args.runs / f"{name}.json")
        args.out.write_text(json.dumps(results, indent=2))
    print_tables(results)


if __name__ == "__main__":
    main()
