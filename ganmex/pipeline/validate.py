"""Start-up checks: fail in the first second with the key, the bad value and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig

from ganmex.errors import ConfigError, check_choice  # noqa: F401  (re-exported for the runner)

POSITIVE_KEYS = ("lr", "batch_size", "eval_batch_size", "image_size", "max_epochs", "max_steps", "steps")


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            if key == "hydra":
                continue
            try:
                value = node[key]
            except Exception:  # unresolvable interpolations (hydra:...) are checked where they are used
                continue
            yield from _walk(value, f"{prefix}{key}.")
    elif isinstance(node, ListConfig):
        for i, value in enumerate(node):
            yield from _walk(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node


def check_positive(cfg: DictConfig) -> None:
    """Learning rates, batch sizes, sizes and budgets must be > 0 (max_steps=-1 means 'unlimited')."""
    for path, value in _walk(cfg):
        leaf = path.rsplit(".", 1)[-1]
        if not (leaf in POSITIVE_KEYS or leaf.endswith("_lr")):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if leaf in ("max_steps", "max_epochs") and value == -1:
            continue
        if value <= 0:
            raise ConfigError(
                f"{path}={value} must be > 0; pass a positive value, e.g. {path}={_example(leaf)}"
            )


def _example(leaf: str) -> str:
    return (
        "1e-3" if leaf.endswith("lr") else "64" if "batch" in leaf else "28" if leaf == "image_size" else "10"
    )


def check_classifier_fits(cfg: DictConfig) -> None:
    """Build the classifier once on the dataset's image size so a bad size fails at start-up."""
    from ganmex.data.base import DatasetInfo
    from ganmex.models.loading import build_classifier

    d = cfg.dataset
    info = DatasetInfo("check", d.num_classes, d.channels, d.image_size, tuple(d.mean), tuple(d.std))
    try:
        build_classifier(cfg.classifier, info)
    except Exception as error:  # instantiate wraps the real error; show its message
        cause = error.__cause__ or error
        raise ConfigError(
            f"dataset.image_size={d.image_size} does not fit classifier={cfg.classifier.name}: {cause}"
        ) from error
