"""Reader for the IDX files MNIST ships (`*-ubyte` or `*-ubyte.gz`)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ganmex.data.errors import DataFileError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def find_idx(raw_dir: Path, stem: str) -> Path | None:
    """The first of `stem` or `stem.gz` that exists under raw_dir."""
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _damaged(path: Path, detail: str) -> DataFileError:
    return DataFileError(
        f"{path} is damaged ({detail}); delete it and download it again (dataset.download=true) "
        f"or copy an intact file there"
    )


def read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file into a tensor; a truncated, corrupt or mislabelled file raises DataFileError."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _damaged(path, f"{type(error).__name__}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise _damaged(path, "not an IDX file: bad magic number")
    dtype, ndim = data[2], data[3]
    if dtype not in _DTYPES:
        raise _damaged(path, f"unknown IDX data type 0x{dtype:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _damaged(path, f"the header needs {header} bytes, the file holds {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    item = np.dtype(_DTYPES[dtype]).itemsize
    expected = int(np.prod(shape))
    held = (len(data) - header) // item
    if held != expected or (len(data) - header) % item:
        raise _damaged(path, f"the header says {expected} values, the file holds {held}: truncated")
    array = np.frombuffer(data, dtype=_DTYPES[dtype], offset=header)
    return torch.from_numpy(array.reshape(shape).copy())
