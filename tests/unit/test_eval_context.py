"""The evaluate modes' device rule and explicit artifacts of the wrong kind, checked before anything loads."""

from __future__ import annotations

import pytest
import torch

from ganmex.errors import ConfigError
from ganmex.pipeline.context import pick_device


def test_device_names_outside_the_choices_are_refused_with_the_key(make_config):
    cfg = make_config()
    expected = "explain.device='tpu' is not valid; choose one of: auto, cpu, cuda"
    with pytest.raises(ConfigError, match=expected):
        pick_device(cfg, "tpu")
    assert pick_device(cfg, "cpu") == torch.device("cpu")


def test_auto_follows_the_trainer_group(make_config):
    assert pick_device(make_config(["trainer=cpu"]), "auto") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: no missing-device error to see")
def test_cuda_without_a_cuda_device_says_what_to_use(make_config):
    with pytest.raises(ConfigError, match="explain.device=cuda but this machine has no CUDA device"):
        pick_device(make_config(), "cuda")


def _fake_artifact(root, name: str, stage: str):
    path = root / name
    path.mkdir()
    (path / "config.yaml").write_text(f"stage: {stage}\n")
    return path


def test_an_explicit_artifact_of_another_kind_names_both_kinds(tmp_path):
    from ganmex.pipeline.stage import explicit_artifact

    gan_dir = _fake_artifact(tmp_path, "gan-0123456789", "gan")
    with pytest.raises(ConfigError, match=r"artifact=.* is a gan artifact, not a classifier artifact"):
        explicit_artifact("classifier", gan_dir)
    classifier_dir = _fake_artifact(tmp_path, "my_best_model", "classifier")
    assert explicit_artifact("oracle", classifier_dir).stage == "classifier"  # any classifier can judge
