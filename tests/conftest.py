"""Shared fixtures: composed configs, real embedded digits, the real MNIST test set, a trained classifier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO_ROOT / "conf")
SHARED_DATA = Path(os.environ.get("GANMEX_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# two threads (the target machine's cores) unless OMP_NUM_THREADS says fewer, e.g. beside other jobs:
# more threads than free cores make OpenMP spin and slow everything down
torch.set_num_threads(max(1, min(2, int(os.environ.get("OMP_NUM_THREADS", 2)), os.cpu_count() or 1)))


def compose_config(tmp_path: Path, overrides: list[str] | None = None, name: str = "train") -> DictConfig:
    """A composed train/evaluate config whose paths point into tmp_path (no Hydra run dir needed)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(tmp_path / "data")
    return cfg


@pytest.fixture
def make_config(tmp_path):
    def factory(overrides: list[str] | None = None, name: str = "train") -> DictConfig:
        return compose_config(tmp_path, overrides, name)

    return factory


@pytest.fixture(scope="session")
def embedded_mnist():
    """The 5,000 real embedded digits as a set-up datamodule (train/val/test)."""
    from ganmex.data.embedded import embedded_mnist

    return embedded_mnist(seed=0)


@pytest.fixture(scope="session")
def mnist_test_digits():
    """(images, labels) of the real 10,000-digit MNIST test set in ../shared/data/MNIST/raw."""
    from ganmex.data.mnist_test import load_mnist_test

    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST test set not found under {SHARED_DATA}/MNIST/raw (set GANMEX_SHARED_DATA)")
    return load_mnist_test(SHARED_DATA)


@pytest.fixture(scope="session")
def trained_classifier_artifact(tmp_path_factory) -> Path:
    """A mnist_cnn trained for 3 epochs on the embedded digits (~96% test accuracy), via the real stage."""
    from ganmex.pipeline.runner import run

    root = tmp_path_factory.mktemp("classifier")
    cfg = compose_config(
        root, ["stage=classifier", "classifier.trainer.max_epochs=3", "logger=none", "callbacks=none"]
    )
    summary = run(cfg)
    return Path(summary["stages"]["classifier"]["artifact"])


@pytest.fixture(scope="session")
def trained_classifier(trained_classifier_artifact):
    """The frozen, eval-mode classifier from `trained_classifier_artifact`."""
    from ganmex import load_classifier

    return load_classifier(trained_classifier_artifact)


INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/integration/ trains or scores on real digits: mark it `integration`, so that
    `pytest -m "not integration"` gives the fast loop."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
