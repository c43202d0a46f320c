"""A `-m` sweep runs every job even when some fail, then names the failed ones and exits non-zero.

Hydra's launchers stop a sweep at the first job that raises SystemExit, and its basic sweeper raises the
first failed job's error only after the batch, with no word about the others. So in a multirun a failed job
logs its one-line error, leaves `job_failed.json` in its own output directory and returns normally; the
`FailedJobsSummary` callback (conf/hydra/default.yaml) reads those files when the sweep ends, logs one line
per failed job and exits with status 1. Files, not memory: the joblib and SLURM launchers run jobs in other
processes. Light imports only (the CLI imports this before torch).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger("ganmex")

FAILED_JOB_FILE = "job_failed.json"
# the sweep's exit status when any job failed (a job stopped by SIGTERM ends the whole sweep with 143)
FAILED_SWEEP_EXIT_CODE = 1


def in_multirun() -> bool:
    """True inside a job of `python train.py -m ...`."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(output_dir: str | Path, error: BaseException) -> None:
    """Leave `job_failed.json` (the job's overrides and one-line error) in the job's output directory."""
    hydra = HydraConfig.get()
    record = {
        "job": hydra.job.num,
        "overrides": list(hydra.overrides.task),
        "error": f"{type(error).__name__}: {error}",
    }
    path = Path(output_dir) / FAILED_JOB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


def clear_failure(output_dir: str | Path) -> None:
    """Forget a failure recorded by an earlier run of this job (a sweep rerun into the same directory)."""
    (Path(output_dir) / FAILED_JOB_FILE).unlink(missing_ok=True)


def failed_jobs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The failure records under a sweep directory, in job order."""
    records = [json.loads(p.read_text()) for p in Path(sweep_dir).glob(f"*/{FAILED_JOB_FILE}")]
    return sorted(records, key=lambda r: r["job"])


class FailedJobsSummary(Callback):
    """At the end of a multirun: one line per failed job, then exit status 1 when any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        failures = failed_jobs(sweep_dir)
        if not failures:
            return
        log.error("%d job(s) of the sweep in %s failed:", len(failures), sweep_dir)
        for record in failures:
            log.error("  #%s %s: %s", record["job"], " ".join(record["overrides"]), record["error"])
        raise SystemExit(FAILED_SWEEP_EXIT_CODE)
