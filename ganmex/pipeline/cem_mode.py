"""`evaluate.py mode=cem`: CEM pertinent negatives/positives for `indices` test images.

    python evaluate.py mode=cem cem.mode=PN dataset=mnist_embedded indices=[0,1,2]

Writes to the run directory `cem/<index>_<mode>.png` (x0 | what the classifier sees | δ in colour:
PN in pink over the grey digit, PP in cyan) and `cem/cem.csv` (one row per image). Needs the finished
classifier artifact and, when cem.gamma > 0, an autoencoder artifact (`autoencoder=conv_ae`, trained by
`python train.py stage=autoencoder autoencoder=conv_ae`, or `cem.autoencoder_artifact=<dir>`).
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganmex.errors import ConfigError
from ganmex.explain.cem import CEMResult, ContrastiveExplainer, cem_scores
from ganmex.models.autoencoder import ConvAutoencoder
from ganmex.models.loading import load_autoencoder
from ganmex.pipeline.context import EvalContext
from ganmex.pipeline.stage import StageResult
from ganmex.report.cem_figures import save_panels

log = logging.getLogger(__name__)

DEFAULT_INDICES = tuple(range(10))
NOT_CONSTRUCTOR_KEYS = ("autoencoder_artifact",)


def find_autoencoder(cfg: DictConfig, device: torch.device) -> ConvAutoencoder | None:
    """The AE that the γ term needs: cem.autoencoder_artifact, else the `autoencoder` group's artifact."""
    if float(cfg.cem.gamma) == 0:
        return None
    if cfg.cem.get("autoencoder_artifact"):
        return load_autoencoder(cfg.cem.autoencoder_artifact, device)
    if cfg.get("autoencoder") is None or cfg.autoencoder.get("name") == "none":
        raise ConfigError(
            f"cem.gamma={cfg.cem.gamma} needs an autoencoder: add `autoencoder=conv_ae` (trained by "
            f"`python train.py stage=autoencoder autoencoder=conv_ae`), pass cem.autoencoder_artifact=<dir>, "
            f"or set cem.gamma=0"
        )
    from ganmex.pipeline.autoencoder_stage import autoencoder_artifact

    artifact = autoencoder_artifact(cfg)
    if not artifact.exists:
        raise FileNotFoundError(
            f"no finished autoencoder artifact at {artifact.path}; train it with "
            f"`python train.py stage=autoencoder autoencoder=conv_ae` (same dataset overrides)"
        )
    return load_autoencoder(artifact.path, device)


def build_explainer(cfg: DictConfig, classifier: torch.nn.Module, autoencoder) -> ContrastiveExplainer:
    settings = OmegaConf.to_container(cfg.cem, resolve=True)
    for key in NOT_CONSTRUCTOR_KEYS:
        settings.pop(key, None)
    return instantiate(OmegaConf.create(settings))(classifier=classifier, autoencoder=autoencoder)


def csv_rows(result: CEMResult, indices: list[int], labels: torch.Tensor) -> list[dict]:
    rows = []
    for i, index in enumerate(indices):
        rows.append(
            {
                "index": index,
                "mode": result.mode,
                "label": int(labels[i]),
                "original_class": int(result.original_class[i]),
                "explained_class": int(result.explained_class[i]),
                "pn_class": int(result.explained_class[i]) if result.mode == "PN" else "",
                "l0": int(result.l0[i]),
                "l1": round(float(result.l1[i]), 4),
                "l2": round(float(result.l2[i]), 4),
                "successful_searches": int(result.successes[i]),
                "final_c": float(result.c[i]),
                "valid": bool(result.valid[i]),
            }
        )
    return rows


def run_cem_mode(cfg: DictConfig) -> StageResult:
    started = time.perf_counter()
    if cfg.get("cem") is None:
        raise ConfigError("mode=cem needs the cem config: add `+explainer=cem` (conf/explainer/cem.yaml)")
    context = EvalContext.open(cfg)
    classifier, device, datamodule = context.classifier, context.device, context.datamodule
    indices = [int(i) for i in (cfg.get("indices") or DEFAULT_INDICES)]
    images, labels = context.images(indices)
    explainer = build_explainer(cfg, classifier, find_autoencoder(cfg, device))
    result = explainer.explain(images)

    out = Path(cfg.paths.output_dir) / "cem"
    out.mkdir(parents=True, exist_ok=True)
    for i, index in enumerate(indices):
        title = f"test #{index} (label {int(labels[i])}), CEM {result.mode}"
        save_panels(out / f"{index:05d}_{result.mode}.png", result, i, title, datamodule.info.class_names)
    rows = csv_rows(result, indices, labels)
    with open(out / "cem.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    metrics = cem_scores(result)
    metrics["cem/n"] = len(indices)
    metrics["cem/time_per_image_s"] = round((time.perf_counter() - started) / len(indices), 3)
    log.info("CEM %s on %d images: %s (written to %s)", result.mode, len(indices), metrics, out)
    return StageResult("evaluate", context.artifact, True, metrics, time.perf_counter() - started)
