"""One-vs-one explanations: `explain(x, source, target, method, baseline, model=f)`.

Methods and baselines may be given as objects or by registered name; every method x compatible
baseline combination goes through this one function (and `explain_all` for the whole grid).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganmex.explain.baselines import Baseline, baseline_by_name
from ganmex.explain.methods import AttributionMethod, method_by_name
from ganmex.explain.target import check_pairs

log = logging.getLogger(__name__)
BaselineLike = Baseline | Callable[[Tensor, Tensor, Tensor], Tensor] | Tensor | str | None


@dataclass
class Explanation:
    """Attributions (shaped like x) and the baseline they were taken against (None for gradient-only)."""

    attributions: Tensor
    baselines: Tensor | None
    method: str
    baseline: str


def baseline_kind(baseline: BaselineLike) -> str:
    if baseline is None:
        return "none"
    return getattr(baseline, "kind", "per_example")


def compatible(method: AttributionMethod, baseline: BaselineLike) -> bool:
    """Gradient-only methods ignore baselines; the others need a baseline of their own kind."""
    return method.baseline_kind == "none" or method.baseline_kind == baseline_kind(baseline)


def _resolve_baseline(baseline: BaselineLike, x: Tensor, source: Tensor, target: Tensor) -> Tensor | None:
    if baseline is None:
        return None
    if isinstance(baseline, Tensor):
        return baseline.to(x.device, x.dtype)
    with torch.no_grad():
        values = baseline(x, source, target)
    if values.min() < 0 or values.max() > 1:
        name = getattr(baseline, "name", type(baseline).__name__)
        low, high = float(values.min()), float(values.max())
        raise ValueError(f"baseline {name!r} left pixel space [0, 1]: range [{low:.3f}, {high:.3f}]")
    return values.to(x.device, x.dtype)


def explain(
    x: Tensor,
    source: Tensor,
    target: Tensor,
    method: AttributionMethod | str,
    baseline: BaselineLike = None,
    *,
    model: nn.Module,
) -> Explanation:
    """Attribute `logit_source - logit_target` (or `logit_source`, per the method's `output`) at x.

    `baseline` is a Baseline, a callable `(x, source, target)`, precomputed tensor, a registered name
    (context-free baselines only), or None for gradient-only methods.
    """
    if isinstance(method, str):
        method = method_by_name(method)
    if isinstance(baseline, str):
        baseline = baseline_by_name(baseline)
    check_pairs(x, source, target)
    source, target = source.to(x.device), target.to(x.device)
    if method.baseline_kind == "none":
        values, name = None, "none"
    else:
        if baseline is None:
            raise ValueError(f"method {method.name!r} needs a {method.baseline_kind} baseline; pass one")
        if not compatible(method, baseline):
            raise ValueError(
                f"method {method.name!r} takes {method.baseline_kind} baselines but "
                f"{getattr(baseline, 'name', 'this baseline')!r} is {baseline_kind(baseline)}"
            )
        values = _resolve_baseline(baseline, x, source, target)
        name = getattr(baseline, "name", "custom")
    attributions = method.attribute(model, x, values, source, target)
    return Explanation(attributions, values, method.name, name)


def explain_plan(
    methods: Mapping[str, AttributionMethod], baselines: Mapping[str, BaselineLike]
) -> list[tuple[str, str]]:
    """The (method, baseline) pairs `explain_all` produces: a gradient-only method once, as (method, "none");
    the others with every compatible baseline."""
    pairs: list[tuple[str, str]] = []
    for method_name, method in methods.items():
        if method.baseline_kind == "none":
            pairs.append((method_name, "none"))
            continue
        usable = [n for n, b in baselines.items() if compatible(method, b)]
        if not usable:
            log.warning("method %s has no %s baseline configured; skipped", method_name, method.baseline_kind)
        pairs.extend((method_name, n) for n in usable)
    return pairs


def explain_all(
    x: Tensor,
    source: Tensor,
    target: Tensor,
    methods: Mapping[str, AttributionMethod],
    baselines: Mapping[str, Baseline],
    *,
    model: nn.Module,
) -> dict[tuple[str, str], Explanation]:
    """Every method x compatible baseline; a gradient-only method runs once, keyed (method, "none")."""
    check_pairs(x, source, target)
    source, target = source.to(x.device), target.to(x.device)
    cache: dict[str, Tensor | None] = {}
    return {
        (m, b): explain_pair(x, source, target, m, b, methods, baselines, cache, model=model)
        for m, b in explain_plan(methods, baselines)
    }


def explain_pair(
    x: Tensor,
    source: Tensor,
    target: Tensor,
    method_name: str,
    baseline_name: str,
    methods: Mapping[str, AttributionMethod],
    baselines: Mapping[str, Baseline],
    cache: dict[str, Tensor | None],
    *,
    model: nn.Module,
) -> Explanation:
    """One (method, baseline) of `explain_plan`, the baseline's values computed once per `cache` (a batch's):
    the evaluation's workers explain one pair at a time and get exactly `explain_all`'s attributions."""
    method = methods[method_name]
    if baseline_name == "none" and method.baseline_kind == "none":
        return explain(x, source, target, method, None, model=model)
    if baseline_name not in cache:
        cache[baseline_name] = _resolve_baseline(baselines[baseline_name], x, source, target)
    attributions = method.attribute(model, x, cache[baseline_name], source, target)
    return Explanation(attributions, cache[baseline_name], method_name, baseline_name)
