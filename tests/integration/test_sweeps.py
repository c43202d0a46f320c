"""Sweeps: a real 2-job multirun on the joblib launcher, W&B grouping/tagging, and the Optuna objective."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ganmex.errors import ConfigError
from ganmex.pipeline.objective import objective_value, validity_at_bounded_proximity
from ganmex.report.wandb_run import configure_wandb, override_tags, sweep_group

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "stage=classifier",
    "classifier.min_val_acc=null",
    "classifier.trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "callbacks=none",
]


def test_joblib_multirun_gives_each_job_its_own_outputs_artifact_and_wandb_run(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="hydra-joblib-launcher not installed")
    sweep_dir = tmp_path / "sweep"
    env = {
        **os.environ,
        "GANMEX_ROOT": str(tmp_path),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
        "logger=wandb",
        "seed=0,1",
        *TINY,
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    summaries = [json.loads((job / "metrics.json").read_text()) for job in jobs]
    overrides = [yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) for job in jobs]
    assert {o for job in overrides for o in job if o.startswith("seed=")} == {"seed=0", "seed=1"}
    # separate artifacts (the seed is in the hash), each finished, none reused
    artifacts = [Path(s["stages"]["classifier"]["artifact"]) for s in summaries]
    assert artifacts[0] != artifacts[1]
    assert all((a / "checkpoint.ckpt").is_file() and (a / "metrics.json").is_file() for a in artifacts)
    assert all(a.parent == tmp_path / "outputs" / "artifacts" for a in artifacts)
    assert [s["stages"]["classifier"]["reused"] for s in summaries] == [False, False]
    assert [s["config"]["seed"] for s in summaries] == [0, 1]
    # separate logs: each job's CSV metrics and its own offline W&B run inside its own dir
    for job in jobs:
        assert (job / "csv" / "classifier" / "metrics.csv").is_file()
    runs = [sorted((job / "wandb").glob("offline-run-*")) for job in jobs]
    assert [len(r) for r in runs] == [1, 1], runs
    assert runs[0][0].name.split("-")[-1] != runs[1][0].name.split("-")[-1]


def test_a_failing_job_does_not_stop_the_sweep_which_names_it_and_exits_1(tmp_path):
    """The issue's repro: job 0 diverges (NaN loss), job 1 must still train; the sweep ends with one line per
    failed job and exit status 1. No hydra.sweep.dir: the default sweep directory must resolve too."""
    env = {**os.environ, "GANMEX_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        "logger=none",
        *TINY,
        "classifier.optimizer.lr=1e30,1e-3",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    assert (sweep_dir / "1" / "metrics.json").is_file()  # the job after the failure ran and finished
    assert not (sweep_dir / "0" / "metrics.json").exists()
    assert f"1 job(s) of the sweep in {sweep_dir} failed:" in output
    assert "#0 " in output and "classifier.optimizer.lr=1e+30" in output and "not finite" in output


def hydra_runtime(mode: str = "RunMode.MULTIRUN", overrides: list[str] | None = None) -> dict:
    return {
        "mode": mode,
        "sweep": {"dir": "/x/outputs/train/multiruns/2025-01-31_12-00-00", "subdir": "1"},
        "job": {"num": 1},
        "overrides": {"task": overrides or []},
    }


def test_wandb_runs_are_grouped_by_sweep_and_tagged_with_overrides(make_config):
    cfg = make_config(["logger=wandb", "seed=3"])
    overrides = ["seed=3", "+trainer.limit_train_batches=2", "paths.root_dir=/tmp/x", "logger=wandb"]
    assert configure_wandb(cfg, hydra_runtime(overrides=overrides)) is True
    wandb_cfg = cfg.logger.wandb
    assert wandb_cfg.group == "train/2025-01-31_12-00-00"
    assert list(wandb_cfg.tags) == ["seed=3", "trainer.limit_train_batches=2"]
    assert wandb_cfg.name == "train/2025-01-31_12-00-00/1"
    # the config arrives flat and plain (what wandb.init(config=...) gets after instantiate)
    flat = OmegaConf.to_container(wandb_cfg.config, resolve=True)
    assert flat["seed"] == 3
    assert flat["classifier.net.width"] == 32
    assert flat["dataset.mean"] == [0.1307]
    assert not any(k.startswith("logger.") for k in flat)
    assert wandb_cfg._convert_ == "all"


def test_wandb_single_run_keeps_task_group_and_explicit_group(make_config):
    cfg = make_config(["logger=wandb"])
    configure_wandb(cfg, hydra_runtime(mode="RunMode.RUN"))
    assert cfg.logger.wandb.group == "train" and cfg.logger.wandb.get("name") is None
    cfg = make_config(["logger=wandb", "logger.wandb.group=mine", "logger.wandb.tags=[paper]"])
    configure_wandb(cfg, hydra_runtime(overrides=["seed=1"]))
    assert cfg.logger.wandb.group == "mine"
    assert list(cfg.logger.wandb.tags) == ["paper", "seed=1"]
    assert configure_wandb(make_config(["logger=csv"]), hydra_runtime()) is False


def test_override_tags_and_group_edge_cases():
    long = "gan.loss.lambda_cls=" + "1" * 80
    assert override_tags(["~callbacks.lr_monitor", "hydra.launcher.n_jobs=2", long, "a=1", "a=1"]) == [
        long[:61] + "...",
        "a=1",
    ]
    assert sweep_group(None, "train") == "train"
    assert (
        sweep_group({"mode": "RunMode.MULTIRUN", "sweep": {"dir": "out/multiruns/s1"}}, "eval") == "eval/s1"
    )


def summary(validity: float, proximity: float) -> dict:
    return {"stages": {"gan": {"metrics": {"val/validity": validity, "val/proximity_l1": proximity}}}}


def test_objective_is_validity_with_a_penalty_beyond_the_proximity_bound():
    assert validity_at_bounded_proximity(summary(0.9, 0.08), 0.1) == pytest.approx(0.9)
    assert validity_at_bounded_proximity(summary(0.95, 0.13), 0.1, penalty=10) == pytest.approx(0.65)
    assert validity_at_bounded_proximity(summary(float("nan"), 0.05), 0.1) == -math.inf
    with pytest.raises(ConfigError, match="ran stages: classifier"):
        validity_at_bounded_proximity({"stages": {"classifier": {"metrics": {}}}}, 0.1)
    with pytest.raises(ConfigError, match=r"reported no \['val/proximity_l1'\]"):
        validity_at_bounded_proximity({"stages": {"gan": {"metrics": {"val/validity": 1.0}}}}, 0.1)
    with pytest.raises(ConfigError, match="max_proximity_l1=0"):
        validity_at_bounded_proximity(summary(0.9, 0.1), 0)


def test_objective_reads_a_reused_artifacts_metrics_json(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"val/validity": 0.8, "val/proximity_l1": 0.12}))
    reused = {"stages": {"gan": {"artifact": str(tmp_path), "reused": True, "metrics": {}}}}
    assert validity_at_bounded_proximity(reused, 0.1, penalty=5) == pytest.approx(0.7)


def test_objective_value_comes_from_the_hparams_search_config():
    spec = yaml.safe_load((REPO_ROOT / "conf" / "hparams_search" / "gan_optuna.yaml").read_text())
    assert spec["hydra"]["sweeper"]["direction"] == "maximize"
    cfg = OmegaConf.create({"objective": spec["objective"]})
    expected = 0.97 - spec["objective"]["penalty"] * (0.15 - spec["objective"]["max_proximity_l1"])
    assert objective_value(cfg, summary(0.97, 0.15)) == pytest.approx(expected)
    assert objective_value(OmegaConf.create({}), summary(0.97, 0.15)) is None
