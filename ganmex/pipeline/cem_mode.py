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

from ganmex.data.base import DatasetInfo
from ganmex.errors import ConfigError
from ganmex.explain.cem import CEMResult, ContrastiveExplainer, cem_scores
from ganmex.models.autoencoder import ConvAutoencoder
from ganmex.models.loading import load_autoencoder, load_classifier
from ganmex.pipeline.build import build_datamodule
from ganmex.pipeline.classifier_stage import classifier_artifact
from ganmex.pipeline.classifier_test import check_compatible, eval_dataset_config
from ganmex.pipeline.stage import StageResult

log = logging.getLogger(__name__)

DEFAULT_INDICES = tuple(range(10))
PN_COLOUR = (1.0, 0.2, 0.8)  # pink, as in the paper
PP_COLOUR = (0.0, 0.9, 0.9)  # cyan
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


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (3, H, W): grey stays grey, colour stays colour."""
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x[:3]


def delta_overlay(x0: torch.Tensor, delta: torch.Tensor, mode: str) -> torch.Tensor:
    """RGB (3, H, W): PN = dimmed x0 with δ (max over channels) painted pink; PP = δ in cyan on black."""
    strength = delta.abs().amax(0, keepdim=True)
    strength = strength / strength.max().clamp_min(1e-8)
    colour = torch.tensor(PN_COLOUR if mode == "PN" else PP_COLOUR).view(3, 1, 1)
    if mode == "PP":
        return (strength * colour).clamp(0, 1)
    base = 0.5 * _grey(x0)
    return ((1 - strength) * base + strength * colour).clamp(0, 1)


def save_panels(path: Path, result: CEMResult, i: int, title: str, class_names: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mode = result.mode
    x0, seen, delta = result.x0[i].cpu(), result.explanation[i].cpu(), result.delta[i].cpu()
    name = lambda k: class_names[k] if k < len(class_names) else str(k)  # noqa: E731
    panels = [
        (_grey(x0), f"x0: {name(int(result.original_class[i]))}"),
        (_grey(seen), f"{mode}: {name(int(result.explained_class[i]))}"),
        (delta_overlay(x0, delta, mode), f"δ ({'valid' if result.valid[i] else 'invalid'})"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(6, 2.3))
    for ax, (image, label) in zip(axes, panels, strict=True):
        ax.imshow(image.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    artifact = classifier_artifact(cfg)
    if not artifact.exists:
        raise FileNotFoundError(
            f"no finished classifier artifact at {artifact.path}; train it first with "
            f"`python train.py stage=classifier` using the same dataset/classifier overrides"
        )
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")
    classifier = load_classifier(artifact.path, device)
    datamodule = build_datamodule(eval_dataset_config(cfg))
    check_compatible(DatasetInfo.from_dict(artifact.config()["dataset_info"]), datamodule.info)
    test = datamodule.dataset("test")
    indices = [int(i) for i in (cfg.get("indices") or DEFAULT_INDICES)]
    bad = [i for i in indices if not 0 <= i < len(test)]
    if bad:
        raise ConfigError(f"indices {bad} are not in [0, {len(test)}) of {datamodule.info.name}'s test set")
    images = torch.stack([test[i][0] for i in indices]).to(device)
    labels = torch.stack([test[i][1] for i in indices])
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
    return StageResult("evaluate", artifact, True, metrics, time.perf_counter() - started)
