"""The input contract of the public model entry points (`Classifier.forward`, `counterfactual`).

Images are float (N, C, H, W) pixels in [0, 1]. A uint8 batch (what `torchvision.io.decode_image` and
`PILToTensor` give) is accepted and divided by 255, so torchvision users need no conversion. Floats
outside [0, 1] (0..255 floats, [-1, 1] GAN-space or normalised images) are refused with their observed
min/max, since the networks normalise internally and would silently explain a different image.
Only code that adds noise on purpose widens the range, inside `noisy_inputs()`; everywhere else
[-1, 1] input is refused, as the README says.
Targets are class indices: ints, integer tensors or integral floats (2.0); 2.7 is refused.
An empty batch (N = 0) is valid and gives an empty result.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

# slack for float round-off around [0, 1] at the strict entry points (resampling, interpolation)
STRICT_TOLERANCE = 1e-3
# inside `noisy_inputs(stdevs)`, Classifier.forward sees inputs perturbed on purpose (SmoothGrad's and
# GradientShap's Gaussian noise, infidelity's perturbations): there it only refuses what cannot be pixels
# plus such noise: beyond NOISE_SIGMAS standard deviations (a 1e-15 chance per pixel), and never less
# than NOISE_TOLERANCE, which still refuses 0..255 floats
NOISE_SIGMAS = 8.0
NOISE_TOLERANCE = 1.0
_forward_tolerance: contextvars.ContextVar[float] = contextvars.ContextVar(
    "forward_tolerance", default=STRICT_TOLERANCE
)

FIX = (
    "pass float pixels in [0, 1]: divide 0..255 images by 255, map [-1, 1] images with (x + 1) / 2, "
    "and do not normalise (the model normalises itself)"
)


@contextlib.contextmanager
def noisy_inputs(stdevs: float) -> Iterator[None]:
    """Within the block, Classifier.forward accepts [0, 1] pixels plus Gaussian noise of `stdevs`: for the
    attribution methods and metrics that add such noise themselves (they check their clean inputs)."""
    token = _forward_tolerance.set(max(NOISE_TOLERANCE, NOISE_SIGMAS * stdevs))
    try:
        yield
    finally:
        _forward_tolerance.reset(token)


def forward_tolerance() -> float:
    """How far outside [0, 1] Classifier.forward accepts pixels here (see noisy_inputs)."""
    return _forward_tolerance.get()


def as_pixels(x: torch.Tensor, name: str = "x", tolerance: float = STRICT_TOLERANCE) -> torch.Tensor:
    """`x` as float pixels in [0, 1]: uint8 is divided by 255; other dtypes, shapes other than
    (N, C, H, W) and floats outside [-tolerance, 1 + tolerance] raise ValueError naming min/max."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor batch (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be a batch N x C x H x W, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float().div(255.0)
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; {FIX} (uint8 0..255 is converted for you)")
    if x.numel() == 0:
        return x
    low, high = (float(v) for v in torch.aminmax(x.detach()))
    if not (low >= -tolerance and high <= 1.0 + tolerance):  # also catches NaN
        raise ValueError(f"{name} holds values in [{low:.4g}, {high:.4g}], not pixels in [0, 1]; {FIX}")
    return x


def classifier_input(x: torch.Tensor, training: bool) -> torch.Tensor:
    """What a classifier's forward takes: uint8 always becomes pixels; in eval mode (every loaded
    classifier) floats outside [0, 1] are refused (beyond the noise of `noisy_inputs`), in training mode
    augmented batches pass as they are."""
    if x.dtype == torch.uint8 or not training:
        return as_pixels(x, tolerance=forward_tolerance())
    return x


def as_targets(
    target: torch.Tensor | int | float, n: int, num_classes: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """`target` as n class indices (int64 on `device`): one int is repeated for the batch; floats must
    be integral (2.0 is class 2; 2.7 raises); any index outside [0, num_classes) raises ValueError."""
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.dtype == torch.bool):
        raise ValueError(f"target must hold class indices, got a bool {target}")
    t = torch.as_tensor(target, device=device)
    if t.is_complex():
        raise ValueError(f"target must hold class indices, got complex values {t.flatten()[:3].tolist()}")
    if t.is_floating_point() and not torch.equal(t, t.round()):
        bad = ", ".join(f"{v:g}" for v in t[t != t.round()][:3].tolist())
        raise ValueError(f"target holds non-integral values {bad}; pass class indices such as 2 or 2.0")
    t = t.long()
    if t.dim() == 0:
        t = t.expand(n)
    if t.dim() != 1 or len(t) != n:
        raise ValueError(
            f"target must be one class index or {n} of them (one per image), got shape {tuple(t.shape)}"
        )
    if n and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = t[(t < 0) | (t >= num_classes)][:3].tolist()
        raise ValueError(f"target holds {bad}, outside the class indices [0, {num_classes - 1}]")
    return t
