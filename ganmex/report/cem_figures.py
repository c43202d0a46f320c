"""CEM figures: x0, what the classifier sees and δ, with pertinent negatives in pink and positives in cyan."""

from __future__ import annotations

from pathlib import Path

import torch

from ganmex.explain.cem import CEMResult

PN_COLOUR = (1.0, 0.2, 0.8)  # pink, as in the paper
PP_COLOUR = (0.0, 0.9, 0.9)  # cyan


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


def _mark(result, i: int) -> str:
    return "" if result.valid[i] else " (invalid)"


def save_pp_pn_figure(path: Path, pp, pn, count: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(count, 4, figsize=(6.4, 1.6 * count))
    for i in range(count):
        panels = [
            (pn.x0[i].expand(3, -1, -1), f"x0: {int(pn.original_class[i])}"),
            (delta_overlay(pp.x0[i], pp.delta[i], "PP"), f"PP: {int(pp.explained_class[i])}{_mark(pp, i)}"),
            (delta_overlay(pn.x0[i], pn.delta[i], "PN"), "PN δ (pink)"),
            (pn.explanation[i].expand(3, -1, -1), f"x0+δ: {int(pn.explained_class[i])}{_mark(pn, i)}"),
        ]
        for ax, (image, title) in zip(axes[i], panels, strict=True):
            ax.imshow(image.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
