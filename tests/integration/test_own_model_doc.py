"""docs/own_model.md, executed: every file it defines is written, every script and command is run in order
(in a scratch directory, at tiny budgets), and what the page promises is checked."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("GANMEX_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
PAGE = REPO_ROOT / "docs" / "own_model.md"
ENTRY_POINTS = {"ganmex-train": REPO_ROOT / "train.py", "ganmex-evaluate": REPO_ROOT / "evaluate.py"}
# what the page's budgets become here: one epoch of the user's script, a few GAN steps, a tiny evaluation
TINY_SCRIPT = {"EPOCHS = 4": "EPOCHS = 1"}
TINY_RUN = [
    "gan.trainer.max_steps=6",
    "gan.trainer.val_check_interval=3",
    "gan.trainer.limit_val_batches=1",
    "gan.min_validity=null",
    "oracle.trainer.max_epochs=1",
    "+oracle.trainer.limit_train_batches=3",
    "oracle.min_val_acc=null",
    "evaluation.num_images=2",
    "evaluation.expensive_images=1",
    "evaluation.cem.num_images=0",
    "callbacks=none",
]
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>python|bash)\n(?P<body>.*?)```", re.S)


def page_steps() -> list[tuple[str, str | None, str]]:
    """(language, file name or None, body) of every fenced block, in page order."""
    return [(m["lang"], m["file"], m["body"]) for m in BLOCK.finditer(PAGE.read_text())]


def command_line(line: str, work: Path) -> list[str]:
    words = shlex.split(line)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    entry = ENTRY_POINTS[words[0]]
    extra = list(TINY_RUN)
    if "eval_dataset=mnist" in words:
        extra.append(f"paths.data_dir={SHARED_DATA}")
    return [sys.executable, str(entry), *words[1:], *extra]


def test_the_own_model_page_runs_from_start_to_end(tmp_path):
    env = {**os.environ, "GANMEX_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO_ROOT), env.get("PYTHONPATH", "")])
    outputs: list[str] = []
    for lang, name, body in page_steps():
        for old, new in TINY_SCRIPT.items():
            body = body.replace(old, new)
        if lang == "python":
            script = tmp_path / (name or f"block_{len(outputs)}.py")
            script.write_text(body)
            if name:  # a file the page defines: used by the commands that follow
                continue
            commands = [[sys.executable, str(script)]]
        else:
            lines = [line for line in body.splitlines() if line.strip()]
            if any("eval_dataset=mnist" in line for line in lines) and not (SHARED_DATA / "MNIST").is_dir():
                lines = [line for line in lines if "eval_dataset=mnist" not in line]
                print(f"skipping the real-MNIST command: no MNIST files under {SHARED_DATA}")
            commands = [command_line(line, tmp_path) for line in lines]
        for command in commands:
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr[-3000:]}"
            outputs.append(done.stdout + done.stderr)

    artifacts = tmp_path / "outputs" / "artifacts"
    imported = sorted(p.name for p in artifacts.glob("classifier-*") if (p / "metrics.json").is_file())
    assert len(imported) == 4  # state_dict, TorchScript, export, Lightning: four files, four imports
    assert len(list(artifacts.glob("gan-*/metrics.json"))) == 4
    log = "\n".join(outputs)
    assert "imported digitnet_ts.pt (torchscript)" in log and "imported lit_digits.ckpt (lightning)" in log
    reports = list((tmp_path / "outputs" / "train" / "runs").glob("*/results.md"))
    assert len(reports) == 1 and "leaderboard" in reports[0].read_text().lower()
    assert "torch.Size([2, 10])" in log  # the notebook block
