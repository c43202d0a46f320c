"""FIDO grid on real MNIST test digits: {FIDO, BBMP} x {SSR, SDR} x in-fill {mean, blur, local mean,
autoencoder, ganmex}.

    python scripts/fido_grid.py [--classifier outputs/artifacts/classifier-<hash>]
        [--autoencoder outputs/artifacts/autoencoder-<hash>] [--gan outputs/artifacts/gan-<hash>]
        [--n 16] [--epochs 100] [--threads 2] [--out outputs/fido_grid]

Each method's hyper-parameters come from conf/attribution/<method>.yaml and each in-filler's from
conf/infill/<name>.yaml. The target class t of each digit is its runner-up class (what GANMEX's G(x, t)
in-fills towards). Missing autoencoder / gan artifacts (newest finished one under outputs/artifacts/ when not
given) drop that column with a note. Writes to --out: `saliency.pt` (maps, digits, labels, targets),
`grid.png` (first 4 digits), `results.md` (time per image; deletion AUC (normalised, lower = more faithful)
and fraction of pixels to flip to t, with removed pixels in-filled by the own in-filler and by black).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from rich.progress import track

from ganmex.artifacts import newest_artifact
from ganmex.data.mnist_test import load_mnist_test
from ganmex.explain.fido import FidoSaliency
from ganmex.explain.infill import InFiller
from ganmex.metrics.perturbation import PerturbationCurve

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
METHODS = ["fido_ssr", "fido_sdr", "bbmp_ssr", "bbmp_sdr"]
INFILLS = ["mean", "blur", "local_mean", "autoencoder", "ganmex"]


def newest(kind: str) -> Path | None:
    """The newest finished artifact of a stage under outputs/artifacts/, or None."""
    try:
        return newest_artifact(ROOT / "outputs" / "artifacts", kind)
    except FileNotFoundError:
        return None


def load_digits(n: int, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first n correctly classified real MNIST test digits, labels, and each one's runner-up class."""
    x, y = load_mnist_test(ROOT.parent / "shared" / "data", 4 * n)
    with torch.no_grad():
        logits = model(x)
    ok = logits.argmax(1) == y
    x, y, logits = x[ok][:n], y[ok][:n], logits[ok][:n]
    return x, y, logits.scatter(1, y[:, None], float("-inf")).argmax(1)


def build_infillers(args) -> dict[str, InFiller]:
    fillers: dict[str, InFiller] = {}
    paths = {
        "autoencoder": ("model", args.autoencoder or newest("autoencoder")),
        "ganmex": ("generator", args.gan or newest("gan")),
    }
    for name in INFILLS:
        node = OmegaConf.merge(
            {"seed": args.seed}, {"node": OmegaConf.load(CONF / "infill" / f"{name}.yaml")}
        )
        if name in paths:
            key, path = paths[name]
            if path is None:
                print(
                    f"[skip] {name} in-fill: no finished {'gan' if name == 'ganmex' else name} artifact "
                    f"under outputs/artifacts/ (pass --{'gan' if name == 'ganmex' else name})"
                )
                continue
            node.node[key] = str(path)
        fillers[name] = instantiate(node.node)
    return fillers


class AsImputer:
    """Lets PerturbationCurve remove pixels with an in-filler: removed pixels are in-filled."""

    def __init__(self, filler: InFiller) -> None:
        self.filler = filler

    def impute(self, x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        # only mask-aware in-fillers come here, and they need no class labels
        return self.filler.infill(x, (~removed).to(x.dtype), None, None)


def deletion(model, x, saliency, y, t, reference) -> tuple[float, float]:
    curve = PerturbationCurve(mode="deletion", num_steps=20, contrast="one_vs_one")
    curve.update(model, x, saliency, y, t, reference)
    out = curve.compute()
    auc = out["auc_normalised"].nanmean().item()
    flip = out["flip_fraction"]
    return auc, flip.nanmean().item() if (~flip.isnan()).any() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier", type=Path, default=None)
    parser.add_argument("--autoencoder", type=Path, default=None)
    parser.add_argument("--gan", type=Path, default=None)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=None, help="override every method's optimisation steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "fido_grid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from ganmex import load_classifier

    classifier = args.classifier or newest("classifier")
    if classifier is None:
        raise SystemExit("no classifier artifact; train one with `python train.py stage=classifier`")
    model = load_classifier(classifier)
    x, y, t = load_digits(args.n, model)
    fillers = build_infillers(args)
    # fixed in-fills (mean, blur, ganmex) do not depend on the mask: precompute once (they are then exactly
    # per-example baselines); mask-aware ones (local mean, autoencoder) in-fill each perturbed state
    fixed = {
        n: f.fill(x, torch.ones_like(x[:, :1]), y, t) for n, f in fillers.items() if not f.mask_dependent
    }

    maps, rows = {}, []
    cells = [(m, f) for m in METHODS for f in fillers]
    for method_name, fill_name in track(cells, description="FIDO grid"):
        conf = OmegaConf.merge(
            {"seed": args.seed}, OmegaConf.load(CONF / "attribution" / f"{method_name}.yaml")
        )
        node = conf[method_name]
        if args.epochs:
            node.epochs = args.epochs
        method: FidoSaliency = instantiate(node)
        filler = fillers[fill_name]
        start = time.perf_counter()
        if fill_name in fixed:
            saliency = method.attribute(model, x, fixed[fill_name], y, t)
            reference = fixed[fill_name]
        else:
            method.infiller = filler
            saliency = method.attribute(model, x, None, y, t)
            reference = AsImputer(filler)
        per_image = (time.perf_counter() - start) / len(x)
        maps[(method_name, fill_name)] = saliency
        auc_own, flip_own = deletion(model, x, saliency, y, t, reference)
        auc_zero, flip_zero = deletion(model, x, saliency, y, t, torch.zeros_like(x))
        rows.append((method_name, fill_name, per_image, auc_own, flip_own, auc_zero, flip_zero))

    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"maps": maps, "images": x, "labels": y, "targets": t, "classifier": str(classifier)},
        args.out / "saliency.pt",
    )
    lines = [
        f"{len(x)} real MNIST test digits, classifier {classifier.name}, target = runner-up class, "
        f"{torch.get_num_threads()} CPU threads.",
        "",
        "| method | in-fill | s / image | deletion AUC (own in-fill) | flip fraction (own) "
        "| deletion AUC (black) | flip fraction (black) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m} | {f} | {s:.2f} | {a:.3f} | {fl:.3f} | {az:.3f} | {fz:.3f} |"
        for m, f, s, a, fl, az, fz in rows
    ]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(x, y, t, maps, list(fillers), args.out / "grid.png")
    print(f"wrote {args.out}/results.md, saliency.pt, grid.png")


def plot(x, y, t, maps, fill_names, path: Path, digits: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [(m, f) for m in METHODS for f in fill_names]
    fig, axes = plt.subplots(
        digits, len(cols) + 1, figsize=(1.1 * (len(cols) + 1), 1.3 * digits), squeeze=False
    )
    for i in range(min(digits, len(x))):
        axes[i, 0].imshow(x[i, 0], cmap="gray")
        axes[i, 0].set_title(f"{y[i].item()}->{t[i].item()}", fontsize=7)
        for j, key in enumerate(cols, start=1):
            axes[i, j].imshow(maps[key][i, 0], cmap="hot", vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(f"{key[0]}\n{key[1]}", fontsize=5)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
