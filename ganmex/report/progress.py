"""Progress of a long loop: a rich bar on a terminal, a sparse log line elsewhere (CI, nohup, SLURM).

A bar that redraws 10 times a second is unreadable in a log file and a silent loop looks hung, so when
stdout is not a TTY `Progress` writes one line through the `ganmex.progress` logger (and so into the Hydra
run's log file) for the first item, the last item, and at most one every `interval_s` seconds in between:

    evaluate: 12/42 (29%) IG x ganmex: deletion curves — elapsed 1:02, ETA 3:27

The default interval is the config key `progress.interval_s` (conf/train.yaml, conf/evaluate.yaml).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ganmex.progress_text import format_progress_line, stdout_is_tty

log = logging.getLogger("ganmex.progress")

DEFAULT_INTERVAL_S = 30.0  # the fallback when no config is at hand; `progress.interval_s` sets it


class Progress:
    """Context manager around a loop of `total` items; `advance` after each, `set_label` for what runs now.

    `console`: a rich Console (its `is_terminal` decides bar or log lines); None uses stdout's TTY-ness.
    `clock` is injectable so tests need no sleeps; `enabled=False` (e.g. DDP ranks other than zero) counts
    silently.
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        console: Any = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
        enabled: bool = True,
    ) -> None:
        if total < 0:
            raise ValueError(f"Progress total={total} must be >= 0")
        if interval_s < 0:
            raise ValueError(f"progress.interval_s={interval_s} must be >= 0 (seconds between log lines)")
        self.total = total
        self.description = description
        self.interval_s = interval_s
        self.done = 0
        self.label = ""
        self._clock = clock
        self._log = logger
        self._started = clock()
        self._last_line: float | None = None
        self._logged_done = -1
        self._closed = not enabled  # a disabled progress never draws nor logs
        if not enabled:
            self._bar = None
            return
        is_tty = console.is_terminal if console is not None else stdout_is_tty()
        self._bar = self._start_bar(console) if is_tty else None

    # rich ------------------------------------------------------------------------------------------------
    def _start_bar(self, console: Any) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = bar.add_task(self.description, total=self.total or None, label="")
        bar.start()  # nests under a running Lightning RichProgressBar (rich >= 14 stacks live displays)
        return bar

    # public API ------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def line(self) -> str:
        return format_progress_line(self.description, self.done, self.total, self.label, self.elapsed)

    def set_label(self, label: str) -> None:
        """What runs now: shown at once on the bar; in the next log line otherwise."""
        self.label = label
        if self._bar is not None:
            self._bar.update(self._task, label=label)

    def advance(self, n: int = 1, label: str = "") -> None:
        """`n` more items are finished; `label` (if given) replaces what runs now."""
        self.done += n
        if label:
            self.label = label
        if self._bar is not None:
            self._bar.update(self._task, advance=n, label=self.label)
            return
        if self._closed:
            return
        now = self._clock()
        first = self._last_line is None
        last = self.total > 0 and self.done >= self.total
        due = self._last_line is not None and now - self._last_line >= self.interval_s
        if first or last or due:
            self._emit(now)

    def close(self) -> None:
        """Stop the bar; off a TTY log the final state unless the last line already showed it."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        elif self._logged_done != self.done or self.total == 0:
            self._emit(self._clock())

    def _emit(self, now: float) -> None:
        self._last_line = now
        self._logged_done = self.done
        self._log.info("%s", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
