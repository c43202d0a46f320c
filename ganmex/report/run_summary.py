"""The block printed when a run ends: what each stage gave, how long it took, and where the outputs are.

Without it a run stops after the last library line and the user has to dig through metrics.json for the
numbers and the paths. `format_run_summary` reads the runner's summary dict only (no files), so it also
works for a summary loaded back from `<run dir>/metrics.json`. Stdlib only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ganmex.progress_text import format_duration

log = logging.getLogger("ganmex")

# stage -> (metric key, label, as percent) headline numbers, in display order; absent ones are skipped
HEADLINES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "classifier": (("test/acc", "test accuracy", True),),
    "oracle": (("test/acc", "oracle test accuracy", True),),
    "gan": (("val/validity", "validity", True), ("val/proximity_l1", "proximity L1", False)),
    "autoencoder": (("test/loss", "test loss", False), ("test/inpaint_mse", "inpaint MSE", False)),
    "evaluate": (("test/acc", "accuracy", True), ("n_images", "images", False)),
}
LEADERBOARD_KEY = "leaderboard"  # stages.evaluate.metrics["leaderboard"]: lines, best first
OUTPUTS_KEY = "outputs"  # stages.<name>.metrics["outputs"]: {name: path}
TITLE = "== run summary =="


def _number(value: Any, percent: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if percent:
        return f"{100 * value:.1f}%"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def headline(name: str, metrics: Mapping[str, Any]) -> str:
    """`test accuracy 98.2%, ...` for the stage's known headline metrics present in `metrics`."""
    parts = []
    for key, label, percent in HEADLINES.get(name, ()):
        text = _number(metrics.get(key), percent)
        if text is not None:
            parts.append(f"{label} {text}")
    return ", ".join(parts)


def _run_dir(summary: Mapping[str, Any]) -> str | None:
    if summary.get("run_dir"):
        return str(summary["run_dir"])
    paths = (summary.get("config") or {}).get("paths") or {}
    return str(paths["output_dir"]) if paths.get("output_dir") else None


def _outputs(stages: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, path) of every output the stages report: `outputs` mappings, and a results.csv's results.md."""
    found: list[tuple[str, str]] = []
    for result in stages.values():
        metrics = result.get("metrics") or {}
        outputs = metrics.get(OUTPUTS_KEY)
        if isinstance(outputs, Mapping):
            found += [(str(k), str(v)) for k, v in outputs.items() if v]
        elif metrics.get("results_csv"):  # the evaluation stage's older summary: results.md lies beside it
            csv = Path(metrics["results_csv"])
            found += [("results", str(csv.with_suffix(".md"))), ("table", str(csv))]
    return found


def format_run_summary(summary: Mapping[str, Any]) -> list[str]:
    """One short block: per stage its wall time (or `reused`) and headline numbers, the evaluation's
    leaderboard lines, the total time, the run directory and the output files."""
    stages: Mapping[str, Any] = summary.get("stages") or {}
    width = max((len(name) for name in stages), default=0)
    lines = [TITLE]
    for name, result in stages.items():
        metrics = result.get("metrics") or {}
        timing = "reused" if result.get("reused") and name != "evaluate" else None
        timing = timing or format_duration(float(result.get("wall_time_s") or 0.0))
        numbers = headline(name, metrics)
        artifact = Path(result["artifact"]).name if result.get("reused") and result.get("artifact") else ""
        detail = "  ".join(p for p in (numbers, artifact if timing == "reused" else "") if p)
        lines.append(f"{name:<{width}}  {timing:>7}  {detail}".rstrip())
        board = metrics.get(LEADERBOARD_KEY)
        if isinstance(board, Sequence) and not isinstance(board, str):
            lines += [f"  {entry}" for entry in board]
    if summary.get("wall_time_s") is not None:
        lines.append(f"{'total':<{width}}  {format_duration(float(summary['wall_time_s'])):>7}")
    run_dir = _run_dir(summary)
    if run_dir:
        lines.append(f"run dir: {run_dir}")
    lines += [f"{name}: {path}" for name, path in _outputs(stages)]
    return lines


def print_run_summary(summary: Mapping[str, Any], logger: logging.Logger = log) -> list[str]:
    """Log the block line by line (so it lands in the console and in the Hydra job's .log); returns it."""
    lines = format_run_summary(summary)
    for line in lines:
        logger.info("%s", line)
    return lines
