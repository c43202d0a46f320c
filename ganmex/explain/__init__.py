"""Explanations of a classifier's (source, target) pairs: Captum methods x counterfactual baselines."""

from ganmex.explain.methods import METHODS, AttributionMethod, build_methods, register_method
from ganmex.explain.target import PairOutput, pair_scalar

__all__ = ["METHODS", "AttributionMethod", "PairOutput", "build_methods", "pair_scalar", "register_method"]
