"""SIGTERM stops a run with exit status 143, wherever it arrives (training, testing, evaluation).

Preemption, `docker stop`, Kubernetes and SLURM's time limit all send SIGTERM, and a scheduler reads the
exit status to decide whether a job succeeded. Lightning's own handler only sets `trainer.received_sigterm`
and its loops then raise `SIGTERMException`, a SystemExit without a code (exit status 0), or nothing at all
outside a loop. `sigterm_raises()` installs a handler that raises `Terminated` instead: Lightning keeps
calling a handler that was installed before it, so the exception leaves `fit`/`test` through their normal
teardown, a stage never commits, its `.partial` checkpoint stays for the rerun, and the CLI exits 143.
Standard library only: the CLI imports this before torch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# the shell's convention for "ended by signal N" is 128 + N; schedulers read 143 as "terminated"
TERMINATED_EXIT_CODE = 128 + int(signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no `except Exception` in a
    library swallows it and the run goes on."""

    exit_code = TERMINATED_EXIT_CODE


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated("received SIGTERM (preemption, time limit or docker/kubectl stop)")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
