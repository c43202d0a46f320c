"""`--variant NAME:KEY=VALUE[,KEY=VALUE...]` of the benchmark scripts: a named set of config overrides that
is timed in the same alternating rounds as the defaults (scripts/bench_gan.py, scripts/bench_evaluation.py).
"""

from __future__ import annotations


def parse_variant(text: str) -> tuple[str, list[str]]:
    """("gp4", ["loss.gp_every=4"]) from "gp4:loss.gp_every=4"; a malformed spec raises ValueError naming
    the expected shape (the scripts print it as one line)."""
    name, sep, overrides = text.partition(":")
    pairs = [item for item in overrides.split(",") if item]
    if not sep or not name or not pairs or any("=" not in item for item in pairs):
        raise ValueError(
            f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...], e.g. gp4:loss.gp_every=4"
        )
    return name, pairs
