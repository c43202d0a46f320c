"""CEM on real MNIST test digits: PN and PP validity and sparsity, and the time per image batched against
one image at a time (what batching the FISTA search buys). `evaluate.py mode=cem` explains chosen images
of one mode; this measures both modes over many digits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganmex.bench.inputs import ARTIFACTS, MNIST_DATA, require_classifier
from ganmex.bench.timing import seconds, timed_call
from ganmex.explain.cem import CEMResult, ContrastiveExplainer, cem_scores
from ganmex.report.tables import markdown_table

MODES = ("PN", "PP")
ROUNDING = 3  # decimals of the seconds in the summary
RATIO_ROUNDING = 1
FIGURE_DIGITS = 10  # rows of the PP/PN figure


def cem_measure(
    classifier: nn.Module,
    autoencoder: nn.Module | None,
    images: Tensor,
    settings: Mapping[str, Any],
    single: int,
) -> tuple[dict[str, dict[str, float]], dict[str, CEMResult]]:
    """Per mode: cem_scores plus seconds per image batched and one by one (the first `single` images)."""
    summary, results = {}, {}
    for mode in MODES:
        explainer = ContrastiveExplainer(classifier, autoencoder, mode=mode, **settings)
        batched, results[mode] = timed_call(explainer.explain, images)
        batched /= len(images)
        explainer.progress = False
        one = sum(seconds(explainer.explain, images[i : i + 1]) for i in range(single)) / max(single, 1)
        summary[mode] = {
            **cem_scores(results[mode]),
            "time_per_image_batched_s": round(batched, ROUNDING),
            "time_per_image_single_s": round(one, ROUNDING),
            "speedup": round(one / batched, RATIO_ROUNDING),
        }
    return summary, results


def cem_markdown(summary: Mapping[str, Mapping[str, float]]) -> str:
    """One row per mode: validity, mean ‖δ‖₁, sparsity and both times."""
    header = [
        "mode",
        "validity",
        "mean ‖δ‖₁",
        "sparsity",
        "s/image batched",
        "s/image one-at-a-time",
        "ratio",
    ]
    body = []
    for mode in MODES:
        s, key = summary[mode], f"cem_{mode.lower()}"
        body.append(
            [
                mode,
                f"{s[f'{key}/validity']:.2f}",
                f"{s[f'{key}/l1']:.2f}",
                f"{s[f'{key}/sparsity']:.3f}",
                str(s["time_per_image_batched_s"]),
                str(s["time_per_image_single_s"]),
                f"{s['speedup']}x",
            ]
        )
    return "\n".join(markdown_table(header, body)) + "\n"


def run_cem_measure(
    settings: Mapping[str, Any],
    classifier: str | Path | None = None,
    autoencoder: str | Path | None = None,
    n: int = 100,
    single: int = 4,
    out: Path = Path("outputs/cem_measure.json"),
    figure: Path | None = None,
    data_root: Path = MNIST_DATA,
    artifacts: Path = ARTIFACTS,
) -> str:
    """Measure the first n real test digits; write the JSON summary (and the PP/PN figure); return the table.
    `settings` are ContrastiveExplainer's (kappa, beta, gamma, iterations, n_searches); gamma 0 needs no
    autoencoder."""
    from ganmex.data.mnist_test import load_mnist_test
    from ganmex.models.loading import load_autoencoder, load_classifier
    from ganmex.report.cem_figures import save_pp_pn_figure

    if float(settings.get("gamma", 0)) > 0 and autoencoder is None:
        raise ValueError(
            f"gamma={settings['gamma']} needs an autoencoder: pass --autoencoder <dir> or --gamma 0"
        )
    torch.manual_seed(0)
    model = load_classifier(require_classifier(classifier, artifacts))
    ae = load_autoencoder(autoencoder) if float(settings.get("gamma", 0)) > 0 else None
    images, labels = load_mnist_test(data_root, n)
    with torch.no_grad():
        accuracy = float((model(images).argmax(1) == labels).float().mean())
    summary, results = cem_measure(model, ae, images, settings, single)
    report = {
        "settings": {**settings, "n": n, "threads": torch.get_num_threads()},
        "accuracy": accuracy,
        **summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    if figure is not None:
        save_pp_pn_figure(figure, results["PP"], results["PN"], count=min(FIGURE_DIGITS, n))
    return json.dumps(summary, indent=1) + "\n\n" + cem_markdown(summary)
