"""The classifier stage on real digits: accuracy, artifacts (reuse, atomicity, resume), DDP, W&B offline."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SHARED_DATA

from ganmex.artifacts import PARTIAL_SUFFIX, RESUME_CHECKPOINT
from ganmex.pipeline.runner import run

TINY = ["stage=classifier", "logger=none", "callbacks=none", "classifier.min_val_acc=null"]


def test_tiny_budget_learns_far_above_chance(trained_classifier_artifact):
    metrics = json.loads((trained_classifier_artifact / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.9  # chance is 0.1
    assert {f"test/acc_class_{c}" for c in range(10)} <= metrics.keys()
    assert (trained_classifier_artifact / "checkpoint.ckpt").is_file()
    assert (trained_classifier_artifact / "config.yaml").is_file()


def test_trained_classifier_scores_the_real_mnist_test_set(trained_classifier_artifact, make_config):
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST test set not found under {SHARED_DATA}/MNIST/raw")
    cfg = make_config(
        [
            f"classifier.artifact={trained_classifier_artifact}",
            "eval_dataset=mnist",
            "mode=classifier_test",
            "logger=none",
        ],
        name="evaluate",
    )
    cfg.paths.data_dir = str(SHARED_DATA)
    summary = run(cfg)
    metrics = summary["stages"]["evaluate"]["metrics"]
    assert metrics["test/n"] == 10_000 and metrics["test/acc"] > 0.9


def test_finished_artifact_is_reused(make_config, caplog):
    cfg = make_config([*TINY, "classifier.trainer.max_epochs=1", "+trainer.limit_train_batches=5"])
    first = run(cfg)["stages"]["classifier"]
    assert not first["reused"]
    with caplog.at_level(logging.INFO):
        second = run(cfg)["stages"]["classifier"]
    assert second["reused"] and second["artifact"] == first["artifact"]
    assert "reusing finished classifier artifact" in caplog.text
    run_summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert run_summary["stages"]["classifier"]["reused"] is True


def _train_cmd(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *TINY,
        "callbacks=checkpoint",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/run",
        *extra,
    ]


# SIGKILL cannot be caught (the kernel's -9); SIGTERM (preemption, time limits, docker stop) must end the
# run with the shell's 128 + 15, never 0, so that a scheduler does not count a stopped job as done
STOPS = [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + signal.SIGTERM)]


@pytest.mark.parametrize(("stop", "returncode"), STOPS, ids=["SIGKILL", "SIGTERM"])
def test_killed_run_leaves_no_finished_artifact_and_resumes(tmp_path, stop, returncode):
    budget = [
        "classifier.trainer.max_epochs=150",  # long enough to be killed mid-run, short enough to resume
        "+trainer.limit_train_batches=5",
        "+trainer.limit_val_batches=1",
    ]
    cmd = _train_cmd(tmp_path, *budget)
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    artifacts = tmp_path / "outputs" / "artifacts"
    deadline = time.time() + 600
    try:
        while not list(artifacts.glob(f"classifier-*{PARTIAL_SUFFIX}/{RESUME_CHECKPOINT}")):
            assert process.poll() is None and time.time() < deadline, "training never wrote a checkpoint"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            os.kill(process.pid, stop)
        process.wait(timeout=600)
    assert process.returncode == returncode, "training finished before it could be stopped, or exited 0"
    finished = [p for p in artifacts.iterdir() if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX)]
    assert finished == []  # nothing looks complete
    assert list(artifacts.glob(f"classifier-*{PARTIAL_SUFFIX}/{RESUME_CHECKPOINT}"))  # the checkpoint is kept
    # the same command resumes from last.ckpt and finishes
    resumed = subprocess.run(
        _train_cmd(tmp_path, *budget),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming classifier training from" in resumed.stdout + resumed.stderr
    finished = [p for p in artifacts.iterdir() if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX)]
    assert len(finished) == 1 and (finished[0] / "metrics.json").is_file()


def test_two_process_ddp_trains_and_writes_one_artifact(tmp_path):
    result = subprocess.run(
        _train_cmd(tmp_path, "trainer=ddp_cpu", "classifier.trainer.max_epochs=2"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    finished = [p for p in (tmp_path / "outputs" / "artifacts").glob("classifier-*") if p.is_dir()]
    assert len(finished) == 1 and not finished[0].name.endswith(PARTIAL_SUFFIX)
    metrics = json.loads((finished[0] / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.8


def test_wandb_offline_run_is_written_and_finished(tmp_path):
    result = subprocess.run(
        _train_cmd(
            tmp_path, "logger=wandb", "classifier.trainer.max_epochs=1", "+trainer.limit_train_batches=3"
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))  # a run `wandb sync` can upload


def test_multirun_sweep_writes_separate_outputs(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            *TINY,
            "classifier=mnist_cnn,svhn_cnn",
            f"paths.root_dir={tmp_path}",
            f"hydra.sweep.dir={tmp_path}/sweep",
            "classifier.trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(summaries) == 2
    artifacts = {json.loads(p.read_text())["stages"]["classifier"]["artifact"] for p in summaries}
    assert len(artifacts) == 2
