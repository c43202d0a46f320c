"""ganmex: explain image classifiers with counterfactual baselines."""

from ganmex.pipeline.build import load_classifier

__all__ = ["load_classifier"]
__version__ = "0.1.0"
