"""Config composition and start-up validation: bad values fail at once, naming the value and the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from ganmex.errors import ConfigError
from ganmex.pipeline.runner import selected_stages, validate


def test_default_config_composes_and_validates(make_config):
    cfg = make_config()
    assert cfg.dataset._target_.endswith("EmbeddedMNISTDataModule")
    assert cfg.classifier.name == "mnist_cnn"
    validate(cfg)


def test_negative_learning_rate_names_key_and_fix(make_config):
    cfg = make_config(["classifier.optimizer.lr=-0.1"])
    with pytest.raises(ConfigError, match=r"classifier\.optimizer\.lr=-0\.1 must be > 0"):
        validate(cfg)


def test_image_size_that_does_not_fit_the_network(make_config):
    cfg = make_config(["dataset.image_size=4"])
    with pytest.raises(ConfigError, match="dataset.image_size=4 does not fit classifier=mnist_cnn"):
        validate(cfg)


def test_unknown_stage_lists_choices(make_config):
    cfg = make_config(["stage=gann"])
    with pytest.raises(ConfigError, match="choose one of: all, classifier, gan"):
        validate(cfg)


def test_stage_selection_runs_upstream_for_train_only(make_config):
    assert selected_stages(make_config(["stage=classifier"])) == ["classifier"]
    evaluate_without_gan = make_config(["stage=evaluate", "gan=none"])
    assert selected_stages(evaluate_without_gan) == ["classifier", "oracle", "evaluate"]
    without_judge = make_config(["stage=evaluate", "gan=none", "oracle=none"])
    assert selected_stages(without_judge) == ["classifier", "evaluate"]
    # only what a stage is made from runs before it: no GAN before the oracle or the autoencoder
    assert selected_stages(make_config(["stage=oracle"])) == ["oracle"]
    assert selected_stages(make_config(["stage=autoencoder", "autoencoder=conv_ae"])) == ["autoencoder"]
    assert selected_stages(make_config(["stage=gan"])) == ["classifier", "gan"]
    assert selected_stages(make_config(name="evaluate")) == ["evaluate"]
    with pytest.raises(ConfigError, match="stage=gan is disabled"):
        selected_stages(make_config(["stage=gan", "gan=none"]))


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_unknown_group_option_lists_valid_choices():
    result = _run_cli("classifier=no_such_net", "--cfg", "job")
    assert result.returncode != 0
    assert "no_such_net" in result.stderr and "mnist_cnn" in result.stderr and "resnet18" in result.stderr


def test_help_lists_config_groups():
    result = _run_cli("--help")
    assert result.returncode == 0
    for group in ("dataset", "classifier", "trainer", "logger", "callbacks", "debug", "experiment"):
        assert group in result.stdout


def test_config_error_is_one_line_unless_a_traceback_is_asked_for(tmp_path):
    args = ("classifier.optimizer.lr=abc", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    plain = _run_cli(*args)
    assert plain.returncode == 1
    output = plain.stdout + plain.stderr  # Hydra's log handler writes to stdout
    assert "classifier.optimizer.lr='abc' must be a number" in output
    assert "Traceback" not in output
    full = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert full.returncode == 1
    assert "Traceback" in full.stderr and "ConfigError" in full.stderr


def test_unknown_option_in_a_list_group_is_named_with_the_choices():
    result = _run_cli("attribution=[integrated_gradient,saliency]")
    assert result.returncode == 1
    expected = "conf/attribution/ has no option integrated_gradient;"
    assert expected in result.stderr
    assert "integrated_gradients" in result.stderr and "Traceback" not in result.stderr


def test_an_unquoted_non_ascii_override_says_how_to_quote_it(tmp_path):
    result = _run_cli("dataset=image_folder", "dataset.root=/data/äpfel")
    assert result.returncode == 1 and "LexerNoViableAltException" not in result.stderr
    assert (
        """pass "dataset.root='/data/äpfel'" (the outer double quotes are for your shell)""" in result.stderr
    )
    quoted = _run_cli("dataset=image_folder", "dataset.root='/data/äpfel'", "--cfg", "job")
    assert quoted.returncode == 0 and "root: /data/äpfel" in quoted.stdout


def test_a_missing_sweep_plugin_names_the_extra(monkeypatch):
    import importlib.util

    from ganmex.cli import missing_sweep_plugin

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert missing_sweep_plugin(["hparams_search=gan_optuna"]) == (
        "hparams_search=gan_optuna needs the Hydra plugin hydra_optuna_sweeper; "
        'install it with pip install -e ".[sweeps]"'
    )
    assert "hydra_submitit_launcher" in missing_sweep_plugin(["-m", "hydra/launcher=slurm"])
    assert missing_sweep_plugin(["hparams_search=null", "seed=1"]) is None


def test_trainer_gpu_without_a_gpu_names_trainer_cpu(make_config, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ConfigError, match=r"trainer.accelerator=gpu but this machine has no CUDA GPU; run with trainer=cpu"
    ):
        validate(make_config(["trainer=gpu"]))


def test_wandb_online_without_a_key_or_network_says_wandb_mode_offline(make_config, monkeypatch, caplog):
    from ganmex import cli

    class UsageError(Exception):  # what wandb.init raises without an API key, from wandb.errors
        __module__ = "wandb.errors"

    def no_key(cfg):
        raise UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr("ganmex.pipeline.runner.run", no_key)
    with pytest.raises(SystemExit) as stopped, caplog.at_level("ERROR"):
        cli.run_job(make_config(["stage=classifier", "logger=none"]))
    assert stopped.value.code == 1
    assert "W&B could not start an online run (UsageError: api_key not configured" in caplog.text
    assert "WANDB_MODE=offline" in caplog.text
