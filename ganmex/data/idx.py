"""Reader for the IDX files MNIST ships (`*-ubyte` or `*-ubyte.gz`)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def find_idx(raw_dir: Path, stem: str) -> Path | None:
    """The first of `stem` or `stem.gz` that exists under raw_dir."""
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file into a tensor; rejects truncated or mislabelled files."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = data[2], data[3]
    if dtype not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{dtype:02x}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=_DTYPES[dtype], offset=4 + 4 * ndim)
    expected = int(np.prod(shape))
    if array.size != expected:
        raise ValueError(f"{path}: header says {expected} values, file holds {array.size} (truncated?)")
    return torch.from_numpy(array.reshape(shape).copy())
