"""One headline-metric list: the leaderboard's default, which the evaluation config points to and
docs/report.md quotes (in order, between its headline-metrics markers)."""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import OmegaConf

from ganmex.report.leaderboard import DEFAULT_HEADLINE

ROOT = Path(__file__).resolve().parents[2]


def test_docs_quote_the_one_headline_list_and_the_config_uses_it():
    text = (ROOT / "docs" / "report.md").read_text()
    block = re.search(r"<!-- headline-metrics:.*?-->(.*?)<!-- /headline-metrics -->", text, re.S)
    assert block, "docs/report.md lost its headline-metrics markers"
    quoted = [
        name
        for line in block.group(1).splitlines()
        if line.startswith("- ")
        for name in re.findall(r"`([^`]+)`", line.split(":")[0])
    ]
    assert quoted == list(DEFAULT_HEADLINE)
    config = OmegaConf.load(ROOT / "conf" / "evaluation" / "default.yaml")
    assert config.headline_metrics is None  # null = DEFAULT_HEADLINE: no second copy of the list
