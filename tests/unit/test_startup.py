"""`--help` and config errors answer fast: the CLI's import path must not load torch, Lightning or pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ganmex.cli import uses_wandb

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "lightning", "torchvision", "pandas", "scipy")


def loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_cli_import_is_light():
    assert loaded_after("import ganmex.cli") == []


def test_data_errors_and_quiet_filters_are_light():
    assert loaded_after("import ganmex.data.errors, ganmex.quiet; ganmex.quiet.install_quiet_filters()") == []


def test_data_attributes_still_resolve():
    assert "lightning" in loaded_after("from ganmex.data import ImageDataModule")


def test_uses_wandb():
    assert uses_wandb(OmegaConf.create({"logger": {"csv": {}, "wandb": {"_target_": "x"}}}))
    assert not uses_wandb(OmegaConf.create({"logger": {"csv": {"_target_": "x"}}}))
    assert not uses_wandb(OmegaConf.create({"logger": None}))
