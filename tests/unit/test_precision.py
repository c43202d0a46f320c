"""`precision: auto`: bf16 autocast only where the device computes bf16 natively."""

import pytest
import torch

from ganmex.training import precision
from ganmex.training.precision import BF16, FP32, resolve_precision


@pytest.mark.parametrize("given", ["32-true", "bf16-mixed", "16-mixed"])
def test_an_explicit_precision_passes_through(given):
    assert resolve_precision(given, "cpu") == given


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"), [(True, False, BF16), (False, True, BF16), (False, False, FP32)]
)
def test_auto_on_cpu_follows_the_bf16_instructions(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", "cpu") == expected


def test_auto_on_a_gpu_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(precision, "gpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "gpu") == BF16
    assert resolve_precision("auto", "cpu") == FP32


def test_this_machine_matches_its_cpu_flags():
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", "cpu") == (BF16 if native else FP32)
