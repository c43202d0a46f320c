"""Faithfulness metrics as torchmetrics.Metric subclasses (batched, device-agnostic, DDP-synchronised).

Every metric keeps per-example values in `cat` states; `compute()` returns a dict name -> per-example (N,)
tensor (plus a few per-set scalars such as FID), so the report can give mean, std, 95% CI and n. Note that
torchmetrics squeezes one-element results, so with a single example use `torch.atleast_1d(value)`.
The scored output is the run's contrast (ganmex.explain.target): logit_c - logit_t by default.
"""

from ganmex.metrics.counterfactual import CounterfactualQuality
from ganmex.metrics.faithfulness import FaithfulnessCorrelation, SensitivityN
from ganmex.metrics.perturbation import PerturbationCurve
from ganmex.metrics.references import (
    BlurReference,
    ConstantReference,
    InputMinimumReference,
    NoisyLinearImputer,
    ZeroReference,
)
from ganmex.metrics.robustness import Infidelity, SensitivityMax
from ganmex.metrics.sanity import CascadingRandomization
from ganmex.metrics.sparsity import Gini

__all__ = [
    "BlurReference",
    "CascadingRandomization",
    "ConstantReference",
    "CounterfactualQuality",
    "FaithfulnessCorrelation",
    "Gini",
    "Infidelity",
    "InputMinimumReference",
    "NoisyLinearImputer",
    "PerturbationCurve",
    "SensitivityMax",
    "SensitivityN",
    "ZeroReference",
]
