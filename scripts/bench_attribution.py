"""Images per second of each attribution method at batch 64, vs calling Captum one image at a time.

    python scripts/bench_attribution.py [--artifact outputs/artifacts/classifier-<hash>] [--batch 64]
        [--methods integrated_gradients deeplift ...] [--device cpu|cuda] [--single 8]

Ours: `method.attribute` on the whole batch (one-vs-one pair output, zero baseline). Reference: the
same Captum class with the same options on the same pair output, called image by image (`--single`
images, to keep it short). LRP has no reference: ours already runs Captum once per (source, target) group.
Prints a markdown table (dated history goes to docs/notes/).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from rich.progress import track

from ganmex.explain.methods import build_methods
from ganmex.explain.target import PairOutput
from ganmex.models.classifiers import mnist_cnn

CONF = str(Path(__file__).resolve().parents[1] / "conf")
DEFAULT = [
    "saliency",
    "grad_x_input",
    "integrated_gradients",
    "deeplift",
    "occlusion",
    "lrp",
    "feature_ablation",
]
REFERENCE = ("saliency", "grad_x_input", "integrated_gradients", "deeplift", "occlusion", "feature_ablation")


def load_model(artifact: str | None, device: str) -> torch.nn.Module:
    if artifact:
        from ganmex import load_classifier

        return load_classifier(artifact, device)
    torch.manual_seed(0)
    return mnist_cnn(1, 10, 28, [0.1307], [0.3081]).eval().requires_grad_(False).to(device)


def timed(device: str, fn, *args) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(*args)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def captum_one_by_one(method, model, x, source, target) -> None:
    """The same Captum class and options as `method`, one image per call (no batching)."""
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        extra = {} if method.baseline_kind == "none" else {"baselines": torch.zeros_like(xi)}
        attributor = method.build(PairOutput(model, method.output))
        attributor.attribute(
            xi, additional_forward_args=(source[i : i + 1], target[i : i + 1]), **extra, **method.options(xi)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--artifact", default=None, help="classifier artifact dir (default: random mnist_cnn)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--single", type=int, default=8, help="images for the one-by-one Captum reference")
    parser.add_argument("--methods", nargs="+", default=DEFAULT)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[f"attribution=[{','.join(args.methods)}]"])
    methods = build_methods(cfg.attribution)
    model = load_model(args.artifact, args.device)
    x = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(args.device)
    logits = model(x)
    source = logits.argmax(1)
    target = logits.scatter(1, source[:, None], float("-inf")).argmax(1)
    zero = torch.zeros_like(x)
    rows = []
    for name, method in track(methods.items(), description="benchmarking"):
        baselines = None if method.baseline_kind == "none" else zero
        method.attribute(
            model, x[:2], None if baselines is None else zero[:2], source[:2], target[:2]
        )  # warm-up
        ours = args.batch / timed(args.device, method.attribute, model, x, baselines, source, target)
        single = float("nan")
        if name in REFERENCE:
            n = args.single
            seconds = timed(args.device, captum_one_by_one, method, model, x[:n], source[:n], target[:n])
            single = n / seconds
        rows.append((name, ours, single))
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    )
    print(f"\nbatch {args.batch}, {device}, MNIST 28x28, mnist_cnn, config defaults of conf/attribution/")
    print("| method | ours, batched (img/s) | Captum one by one (img/s) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, ours, single in rows:
        ratio = f"{ours / single:.1f}x" if single == single else "-"
        ref = f"{single:.3g}" if single == single else "-"
        print(f"| {name} | {ours:.3g} | {ref} | {ratio} |")


if __name__ == "__main__":
    main()
