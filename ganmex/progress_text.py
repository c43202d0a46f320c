"""How progress reads: durations, ETA and the one-line summary (stdlib only, importable from any layer).

Shared by the evaluation's `ganmex.report.progress.Progress` and the training callback
`ganmex.training.progress.ProgressLogCallback`, so both write the same kind of line.
"""

from __future__ import annotations

import sys


def format_duration(seconds: float) -> str:
    """`M:SS` below an hour, `H:MM:SS` above (what rich's columns show too)."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Remaining time at the mean pace so far: 0 when all is done, None while there is no pace yet."""
    if done >= total:
        return 0.0
    if done <= 0 or elapsed <= 0:
        return None
    return elapsed / done * (total - done)


def format_eta(elapsed: float, done: int, total: int) -> str:
    eta = eta_seconds(elapsed, done, total)
    return format_duration(eta) if eta is not None else "?"


def format_counts(done: int, total: int) -> str:
    """`12/42 (28%)`; `0/0` for an empty loop."""
    return f"{done}/{total} ({100 * done // total}%)" if total > 0 else f"{done}/{total}"


def format_progress_line(description: str, done: int, total: int, label: str, elapsed: float) -> str:
    """One self-contained line: counts, percent, what runs now, elapsed and ETA."""
    what = f" {label}" if label else ""
    return (
        f"{description}: {format_counts(done, total)}{what} — elapsed {format_duration(elapsed)}, "
        f"ETA {format_eta(elapsed, done, total)}"
    )


def stdout_is_tty() -> bool:
    """Whether a person watches stdout live (then bars); off a TTY we write sparse log lines instead."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())
