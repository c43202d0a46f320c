"""Progress off a TTY: first, last and at most one line per interval, with counts, label, elapsed and ETA."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from ganmex.progress_text import eta_seconds, format_duration, format_progress_line
from ganmex.report.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="ganmex.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "ganmex.progress"]


def plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.6, 62, 3599, 3600 + 62)] == [
        "0:00",
        "1:00",
        "1:02",
        "59:59",
        "1:01:02",
    ]


def test_eta_from_mean_pace():
    assert eta_seconds(62.0, 12, 42) == pytest.approx(62 / 12 * 30)  # 155 s
    assert eta_seconds(5.0, 0, 42) is None
    assert eta_seconds(5.0, 0, 0) == 0.0
    assert eta_seconds(80.0, 42, 42) == 0.0


def test_line_reads_like_the_spec():
    line = format_progress_line("evaluate", 12, 42, "IG x ganmex: deletion curves", 62.0)
    assert line == "evaluate: 12/42 (28%) IG x ganmex: deletion curves — elapsed 1:02, ETA 2:35"


def test_logs_first_then_at_most_one_per_interval_then_last(lines):
    clock = FakeClock()
    with Progress(10, "evaluate", interval_s=30, console=plain_console(), clock=clock) as p:
        for i in range(10):
            clock.now += 7  # one item every 7 s: lines at items 1, 6 (35 s after 1), 10 (the last)
            p.advance(label=f"item {i}")
    out = lines()
    assert [line.split(" item")[0] for line in out] == [
        "evaluate: 1/10 (10%)",
        "evaluate: 6/10 (60%)",
        "evaluate: 10/10 (100%)",
    ]
    assert out[0] == "evaluate: 1/10 (10%) item 0 — elapsed 0:07, ETA 1:03"
    assert out[-1] == "evaluate: 10/10 (100%) item 9 — elapsed 1:10, ETA 0:00"


def test_label_set_between_lines_shows_in_the_next(lines):
    clock = FakeClock()
    p = Progress(3, "evaluate", interval_s=0, console=plain_console(), clock=clock)
    p.advance()
    p.set_label("IG x zero: sanity")  # not logged on its own (no extra line per label) ...
    assert len(lines()) == 1
    clock.now += 4
    p.advance()  # ... but shown in the next line
    p.close()
    assert lines()[1] == "evaluate: 2/3 (66%) IG x zero: sanity — elapsed 0:04, ETA 0:02"


def test_close_before_the_end_logs_where_it_stopped(lines):
    clock = FakeClock()
    p = Progress(4, "gan grid", console=plain_console(), clock=clock)
    p.advance()
    clock.now += 3
    p.advance()
    p.close()
    p.close()  # idempotent
    assert lines() == [
        "gan grid: 1/4 (25%) — elapsed 0:00, ETA ?",
        "gan grid: 2/4 (50%) — elapsed 0:03, ETA 0:03",
    ]


def test_total_zero_logs_one_line(lines):
    with Progress(0, "evaluate", console=plain_console(), clock=FakeClock()):
        pass
    assert lines() == ["evaluate: 0/0 — elapsed 0:00, ETA 0:00"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="total=-1"):
        Progress(-1, "x", console=plain_console())
    with pytest.raises(ValueError, match="progress.interval_s=-5"):
        Progress(1, "x", interval_s=-5, console=plain_console())


def test_terminal_draws_a_bar_and_logs_nothing(lines):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with Progress(2, "evaluate", console=console) as p:
        p.set_label("IG x ganmex")
        p.advance()
        p.advance()
    assert lines() == []
    text = buffer.getvalue()
    assert "evaluate" in text and "2/2" in text and "IG x ganmex" in text


def test_disabled_progress_counts_silently(lines):
    buffer = io.StringIO()
    with Progress(2, "evaluate", console=Console(file=buffer, force_terminal=True), enabled=False) as p:
        p.advance(label="x")
        p.advance()
    assert (p.done, lines(), buffer.getvalue()) == (2, [], "")


def test_the_whole_split_evaluation_shows_its_eta_in_hours(lines):
    """evaluation.num_images=null: 200 batches of the 10,000 MNIST test digits x 4 (method, baseline)
    explanations each; after 3 of them at 30 s apiece the line shows the remaining 797 x 30 s as H:MM:SS."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from torch import nn

    from ganmex.explain.baselines import Blur, Zero
    from ganmex.explain.methods import GradXInput, IntegratedGradients
    from ganmex.pipeline.evaluation_module import EvaluationModule, EvaluationPlan

    plan = EvaluationPlan(
        methods={"integrated_gradients": IntegratedGradients(), "grad_x_input": GradXInput()},
        baselines={"zero": Zero(), "blur": Blur(), "black": Zero()},
        metric_configs=OmegaConf.create({}),
        references={},
        curve_references=[],
        progress_interval_s=0,
    )
    module = EvaluationModule(nn.Identity(), plan)
    module.progress_clock = clock = FakeClock()
    module._trainer = SimpleNamespace(num_test_batches=[200], is_global_zero=True, world_size=1)
    module.on_test_start()  # pytest captures stdout: no TTY, so log lines
    for _ in range(3):
        clock.now += 30.0
        module._progress("integrated_gradients x zero: done", advance=1)
    module.on_test_end()
    assert module.progress.total == 200 * 4  # IG x 3 per-example baselines + grad x input once
    assert lines()[-1] == (
        "evaluate: 3/800 (0%) integrated_gradients x zero: done — elapsed 1:30, ETA 6:38:30"
    )
