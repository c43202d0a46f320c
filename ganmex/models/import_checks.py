"""What an imported classifier must do on the dataset before ganmex builds on it.

One batch of real images goes through the wrapped model: the logits must be (N, num_classes) and
finite, the model must be in eval mode (dropout and batch norm frozen: two passes agree, and an image
gets the same logits alone as in a batch) and take any batch size. Rows that sum to 1 are
probabilities, which changes what the one-vs-one logit difference means: a warning, not an error.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ganmex.models.external import ModelImportError

log = logging.getLogger(__name__)

# two eval-mode passes over the same images must agree to this share of the logits' scale (round-off
# only: other batch sizes take other kernels, so large logits differ in their last digits)
REPEAT_TOLERANCE = 1e-4
# rows within this of summing to 1 (and non-negative) read as probabilities
PROBABILITY_TOLERANCE = 1e-4
# words in an error that point at a device mismatch rather than at the data
DEVICE_WORDS = ("device", "cuda", "CUDA", "meta")


def _describe(error: Exception) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:240]


def _run(classifier: nn.Module, images: Tensor, what: str) -> Tensor:
    try:
        with torch.no_grad():
            return classifier(images)
    except ModelImportError:
        raise
    except Exception as error:  # the user's code can raise anything: report it as one line
        reason = _describe(error)
        if any(word in str(error) for word in DEVICE_WORDS):
            raise ModelImportError(
                f"the classifier fails on {images.device} {what} ({reason}); it holds tensors on another "
                f"device: re-save it from the CPU (model.cpu() before torch.jit.trace/script or export)"
            ) from None
        shape = "x".join(map(str, images.shape[1:]))
        raise ModelImportError(
            f"the classifier fails on {what} of shape {shape} ({reason}); check that dataset.channels, "
            f"dataset.image_size and classifier.input match what the model was trained on"
        ) from None


def in_training_mode(net: nn.Module) -> list[str]:
    """Names of submodules still in training mode after `eval()` (e.g. an overridden `train`)."""
    if isinstance(net, torch.jit.ScriptModule):
        return []
    return [name or "<root>" for name, module in net.named_modules() if module.training]


def check_imported_classifier(classifier: nn.Module, images: Tensor, num_classes: int) -> None:
    """Raise ModelImportError with one line when `classifier` cannot stand in for a trained one."""
    classifier.eval()
    training = in_training_mode(classifier)
    if training:
        raise ModelImportError(
            f"modules {', '.join(training[:5])} stay in training mode after eval(); dropout and batch norm "
            f"must be frozen to explain a model"
        )
    what = "the dataset's images"
    logits = _run(classifier, images, what)
    n = images.shape[0]
    if logits.dim() != 2 or tuple(logits.shape) != (n, num_classes):
        raise ModelImportError(
            f"the classifier returns shape {tuple(logits.shape)} for {n} images; the dataset has "
            f"dataset.num_classes={num_classes}, so ({n}, {num_classes}) logits are expected: pick the "
            f"dataset the model was trained on or set dataset.num_classes"
        )
    if not torch.isfinite(logits).all():
        raise ModelImportError(
            "the classifier returns NaN or infinite logits on the dataset's images; check classifier.input "
            "(mean/std) and the weights"
        )
    tolerance = REPEAT_TOLERANCE * max(1.0, float(logits.abs().max()))
    again = _run(classifier, images, what)
    if not torch.allclose(logits, again, atol=tolerance, rtol=0):
        raise ModelImportError(
            "the classifier gives different logits for the same images in eval mode; dropout or batch "
            "norm still samples: make eval() freeze them"
        )
    if n > 1:
        try:
            alone = _run(classifier, images[:1], "one image")
        except ModelImportError as error:
            raise ModelImportError(
                f"the classifier takes a batch of {n} but not of 1 image ({str(error)[:200]}); a model "
                f"exported with a static batch size does this: export it with "
                f"dynamic_shapes={{'x': {{0: torch.export.Dim('batch')}}}}"
            ) from None
        if not torch.allclose(alone, logits[:1], atol=tolerance, rtol=0):
            raise ModelImportError(
                "the classifier's logits for an image depend on the rest of its batch: batch norm uses "
                "batch statistics (training mode); save or export the model after model.eval()"
            )
    if (logits >= 0).all() and torch.allclose(
        logits.sum(1), torch.ones(n, dtype=logits.dtype), atol=PROBABILITY_TOLERANCE
    ):
        log.warning(
            "the classifier's outputs are probabilities (rows sum to 1), not logits: ganmex explains "
            "output_c - output_t, which for probabilities is a difference of probabilities, not the "
            "log-odds of c against t; import the model without its final softmax to explain logits"
        )
