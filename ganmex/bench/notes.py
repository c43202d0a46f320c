"""Measured history goes to dated notes (docs/notes/<date>-<name>.md), never into the user docs."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from ganmex.bench.inputs import REPO

NOTES = REPO / "docs" / "notes"


def append_note(
    lines: Sequence[str], name: str, notes: Path = NOTES, day: datetime.date | None = None
) -> Path:
    """Append `lines` to notes/<day, default today>-<name>.md; return its path."""
    path = notes / f"{day or datetime.date.today()}-{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
