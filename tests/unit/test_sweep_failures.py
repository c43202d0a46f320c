"""The end of a -m sweep: one line per failed job (read from the jobs' directories) and exit status 1."""

from __future__ import annotations

import json
import logging

import pytest
from omegaconf import OmegaConf

from ganmex.sweep_failures import FAILED_JOB_FILE, FailedJobsSummary, clear_failure, failed_jobs


def _fail(sweep_dir, job: int, error: str) -> None:
    (sweep_dir / str(job)).mkdir(parents=True)
    record = {"job": job, "overrides": [f"seed={job}"], "error": error}
    (sweep_dir / str(job) / FAILED_JOB_FILE).write_text(json.dumps(record))


def test_the_summary_names_every_failed_job_in_order_and_exits_1(tmp_path, caplog):
    for job, error in ((10, "ConfigError: b"), (2, "UnsoundTrainingError: a")):
        _fail(tmp_path, job, error)
    (tmp_path / "3").mkdir()  # a job that finished
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        FailedJobsSummary().on_multirun_end(config=config)
    assert stopped.value.code == 1
    assert f"2 job(s) of the sweep in {tmp_path} failed:" in caplog.text
    assert caplog.text.index("#2 seed=2: UnsoundTrainingError: a") < caplog.text.index("#10 seed=10")


def test_a_sweep_without_failures_ends_quietly_and_a_rerun_clears_its_old_failure(tmp_path):
    _fail(tmp_path, 0, "ConfigError: x")
    clear_failure(tmp_path / "0")  # the job ran again in the same directory
    assert failed_jobs(tmp_path) == []
    FailedJobsSummary().on_multirun_end(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
