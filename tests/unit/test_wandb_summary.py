"""Dashboard names for the stages' headline numbers."""

from ganmex.report.wandb_run import log_run_summary, summary_aliases


def test_summary_aliases_use_consistent_names_and_skip_absent_stages():
    summary = {
        "stages": {
            "classifier": {"metrics": {"test/acc": 0.98, "val/acc": 0.97}},
            "gan": {"metrics": {"val/validity": 0.95, "val/proximity_l1": 0.08}},
        }
    }
    assert summary_aliases(summary) == {
        "classifier/test_acc": 0.98,
        "classifier/val_acc": 0.97,
        "gan/validity": 0.95,
        "gan/proximity_l1": 0.08,
    }
    assert summary_aliases({"stages": {}}) == {}


def test_log_run_summary_is_a_no_op_without_a_run(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(run=None))
    assert log_run_summary({"stages": {}}) is False
