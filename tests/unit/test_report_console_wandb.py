"""The rich terminal table and the W&B logging (against a stand-in wandb module: no account, no network)."""

from __future__ import annotations

import sys
import types

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from ganmex.report.console import print_results, results_table
from ganmex.report.records import Record
from ganmex.report.tables import aggregate
from ganmex.report.wandb_log import flatten_config, log_results


@pytest.fixture
def frame():
    records = [Record("ig", "zero", "deletion_auc", v, i, False) for i, v in enumerate((0.5, 0.7))]
    records += [Record("ig", "ganmex", "deletion_auc", v, i, False) for i, v in enumerate((0.2, 0.4))]
    records += [
        Record("ig", "zero", "validity", 0.9, 0, True),
        Record("ig", "ganmex", "validity", 0.6, 0, True),
    ]
    records += [
        Record("saliency", "zero", "deletion_auc", 0.1, 0, False),
        Record("saliency", "ganmex", "deletion_auc", 0.3, 0, False),
    ]
    return aggregate(records)


def _styles(table) -> list[list[str]]:
    """Style of each body cell, row by row, for the baseline columns."""
    columns = table.columns[2:]
    return [[str(col._cells[row].style) for col in columns] for row in range(table.row_count)]


def test_rich_table_bolds_the_best_baseline_per_row(frame):
    table = results_table(frame)
    assert [c.header for c in table.columns] == ["metric", "method", "zero", "ganmex"]
    # rows sorted by metric: deletion_auc/ig, deletion_auc/saliency, validity/ig
    assert _styles(table) == [["", "bold green"], ["bold green", ""], ["bold green", ""]]
    console = Console(record=True, width=120)
    print_results(frame, console=console)
    text = console.export_text()
    assert "deletion_auc ↓" in text and "validity ↑" in text and "0.3" in text


def test_no_active_run_is_a_no_op(frame, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(run=None))
    assert log_results(frame) is False
    monkeypatch.delitem(sys.modules, "wandb")
    assert log_results(frame) is False


class FakeRun:
    id = "fake"

    def __init__(self):
        self.logged, self.summary, self.config = [], {}, types.SimpleNamespace(values={})
        self.config.update = lambda values, allow_val_change: self.config.values.update(values)

    def log(self, payload):
        self.logged.append(payload)


def test_active_run_gets_table_images_summary_and_flat_config(frame, tmp_path, monkeypatch):
    run = FakeRun()
    fake = types.SimpleNamespace(
        run=run,
        Table=lambda dataframe: ("table", dataframe.shape),
        Image=lambda path, caption: ("image", path),
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    png = tmp_path / "curves.png"
    png.write_bytes(b"png")
    config = OmegaConf.create({"evaluation": {"methods": ["ig"], "steps": 10}, "seed": 0})
    assert log_results(frame, {"curves": png, "sanity": None, "missing": tmp_path / "no.png"}, config)
    assert run.logged == [{"eval/results": ("table", frame.shape), "eval/curves": ("image", str(png))}]
    assert run.summary == {
        "eval/ig/zero/deletion_auc": pytest.approx(0.6),
        "eval/ig/ganmex/deletion_auc": pytest.approx(0.3),
        "eval/ig/zero/validity": 0.9,
        "eval/ig/ganmex/validity": 0.6,
        "eval/saliency/zero/deletion_auc": 0.1,
        "eval/saliency/ganmex/deletion_auc": 0.3,
    }
    assert run.config.values == {"evaluation.methods": ["ig"], "evaluation.steps": 10, "seed": 0}


def test_flatten_config_keeps_unresolvable_interpolations_as_text():
    config = OmegaConf.create({"paths": {"out": "${hydra:runtime.output_dir}", "root": "/r"}, "empty": {}})
    assert flatten_config(config) == {
        "paths.out": "${hydra:runtime.output_dir}",
        "paths.root": "/r",
        "empty": {},
    }
