"""Work that several metric instances of one test batch would each redo: computed once, then looked up.

The evaluation scores every method x baseline of a batch on the same images. Much of a metric's work does
not depend on the attributions: the random subsets of faithfulness correlation and Sensitivity-n are drawn
per pair from (seed, global id), so every method sees the same ones, and the forward passes of "x with
subset S replaced by the reference" are then the same for every method explained against that reference
(a shared reference such as `blur`: all of them; `@baseline`: those of one baseline). `SharedWork` memoises
such results for the lifetime of one test batch, keyed by everything they depend on, so the numbers are the
ones each instance would have computed itself; the evaluation module creates one per batch
(`evaluation.share_work`), and metrics used on their own pass none and compute everything.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SharedWork:
    """A memo of one test batch's attribution-independent results: `get(key, compute)`."""

    def __init__(self) -> None:
        self._values: dict[Hashable, object] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value stored under `key`, computed by `compute()` the first time it is asked for."""
        if key in self._values:
            self.hits += 1
        else:
            self.misses += 1
            self._values[key] = compute()
        return self._values[key]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._values)


def share(shared: SharedWork | None, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` through `shared` when there is one (and a key to file it under), else directly."""
    if shared is None or key is None:
        return compute()
    return shared.get(key, compute)
