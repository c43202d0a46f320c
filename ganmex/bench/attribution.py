"""Images per second of each attribution method on a whole batch, against the same Captum class with the
same options called one image at a time: what batching the pairs buys.

LRP has no one-by-one reference: ours already runs Captum once per (source, target) group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganmex.bench.config import composed
from ganmex.bench.inputs import MNIST_CHANNELS, MNIST_SIZE, classifier_or_untrained
from ganmex.bench.timing import seconds
from ganmex.explain.methods import AttributionMethod, build_methods
from ganmex.explain.pairs import select_pairs
from ganmex.explain.target import PairOutput
from ganmex.report.tables import markdown_table

METHODS = (
    "saliency",
    "grad_x_input",
    "integrated_gradients",
    "deeplift",
    "occlusion",
    "lrp",
    "feature_ablation",
)
REFERENCE = ("saliency", "grad_x_input", "integrated_gradients", "deeplift", "occlusion", "feature_ablation")
WARMUP_IMAGES = 2  # a first call builds hooks and caches: not part of the timing


@dataclass(frozen=True)
class AttributionSpeed:
    """Images per second of one method: batched, and one by one through Captum (NaN without reference)."""

    method: str
    batched: float
    single: float

    @property
    def speedup(self) -> float:
        return self.batched / self.single


def shipped_methods(names: Sequence[str]) -> dict[str, AttributionMethod]:
    """The attribution methods with the options of conf/attribution/ (as `attribution=[...]` composes)."""
    return build_methods(composed([f"attribution=[{','.join(names)}]"]).attribution)


def captum_one_by_one(
    method: AttributionMethod, model: nn.Module, x: Tensor, source: Tensor, target: Tensor
) -> Tensor:
    """The same Captum class and options as `method`, one image per call (no batching), zero baseline."""
    out = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        extra = {} if method.baseline_kind == "none" else {"baselines": torch.zeros_like(xi)}
        attributor = method.build(PairOutput(model, method.contrast))
        pair = (source[i : i + 1], target[i : i + 1])
        out.append(
            attributor.attribute(xi, additional_forward_args=pair, **extra, **method.options(xi)).detach()
        )
    return torch.cat(out)


def attribution_speed(
    methods: Mapping[str, AttributionMethod],
    model: nn.Module,
    x: Tensor,
    single: int,
    device: str = "cpu",
) -> list[AttributionSpeed]:
    """Each method on x's runner-up pairs (zero baseline), batched and, for REFERENCE, `single` one by one."""
    with torch.no_grad():
        pairs = select_pairs(model(x), "runner_up")
    source, target = pairs.source, pairs.target
    zero = torch.zeros_like(x)
    rows = []
    for name, method in methods.items():
        baselines = None if method.baseline_kind == "none" else zero
        head = slice(0, WARMUP_IMAGES)
        method.attribute(
            model, x[head], None if baselines is None else zero[head], source[head], target[head]
        )
        batched = len(x) / seconds(method.attribute, model, x, baselines, source, target, device=device)
        one_by_one = float("nan")
        if name in REFERENCE and single:
            head = slice(0, single)
            one_by_one = single / seconds(
                captum_one_by_one, method, model, x[head], source[head], target[head], device=device
            )
        rows.append(AttributionSpeed(name, batched, one_by_one))
    return rows


def attribution_markdown(rows: Sequence[AttributionSpeed], setup: str) -> str:
    """A line saying what ran, then images/s both ways and the speed-up ('-' without reference)."""

    def number(value: float, text: str) -> str:
        return "-" if value != value else text

    body = [
        [
            r.method,
            f"{r.batched:.3g}",
            number(r.single, f"{r.single:.3g}"),
            number(r.single, f"{r.speedup:.1f}x"),
        ]
        for r in rows
    ]
    header = ["method", "ours, batched (img/s)", "Captum one by one (img/s)", "speed-up"]
    return "\n".join([setup, *markdown_table(header, body, (False, True, True, True))]) + "\n"


def run_attribution_bench(
    artifact: str | None = None,
    batch: int = 64,
    single: int = 8,
    methods: Sequence[str] = METHODS,
    device: str = "cpu",
    threads: int = 2,
) -> str:
    """The table for `batch` random images through the artifact's classifier (else an untrained mnist_cnn)."""
    chosen = shipped_methods(methods)
    model, model_name = classifier_or_untrained(artifact, device=device)
    x = torch.rand(
        batch, MNIST_CHANNELS, MNIST_SIZE, MNIST_SIZE, generator=torch.Generator().manual_seed(0)
    ).to(device)
    rows = attribution_speed(chosen, model, x, single, device)
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {threads} threads"
    setup = f"\nbatch {batch}, {where}, MNIST 28x28, {model_name}, config defaults of conf/attribution/"
    return attribution_markdown(rows, setup)
