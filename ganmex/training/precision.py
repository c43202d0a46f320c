"""`precision: auto` for a stage's trainer: bf16 autocast where the hardware computes bf16 natively,
full fp32 elsewhere (where bf16 is emulated and slower)."""

from __future__ import annotations

import torch

AUTO = "auto"
BF16 = "bf16-mixed"
FP32 = "32-true"


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX tiles: the CPU instructions that make bf16 matrix products faster than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def gpu_has_native_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str, accelerator: str) -> str:
    """The Lightning precision a trainer runs with: `precision` itself, or for `auto` bf16-mixed where the
    device `accelerator` names (cpu | gpu | cuda | auto) has native bf16, else 32-true."""
    if str(precision) != AUTO:
        return str(precision)
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available())
    native = gpu_has_native_bf16() if on_gpu else cpu_has_native_bf16()
    return BF16 if native else FP32
