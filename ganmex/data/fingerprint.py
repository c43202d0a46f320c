"""Content fingerprints of data files, so artifact hashes follow the data and not only its path.

Checksums are cached in memory by (path, size, mtime): a stage hashes the same files several times per
run (its own hash, the hash of the stages it depends on) but reads each file once.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

# bytes read per chunk while hashing a file
CHUNK = 1 << 20

_CACHE: dict[tuple[str, str, int, int], str] = {}


def _key(path: Path, kind: str) -> tuple[str, str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), kind, stat.st_size, stat.st_mtime_ns)


def _digest(handle, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    while chunk := handle.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def file_md5(path: Path) -> str:
    """md5 of the file's bytes (what torchvision's release checksums are)."""
    key = _key(path, "md5")
    if key not in _CACHE:
        with open(path, "rb") as handle:
            _CACHE[key] = _digest(handle, "md5")
    return _CACHE[key]


def content_sha256(path: Path) -> str:
    """sha256 of the file's content, decompressed for `.gz`, so `x` and `x.gz` holding the same
    data fingerprint the same."""
    key = _key(path, "content-sha256")
    if key not in _CACHE:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            _CACHE[key] = _digest(handle, "sha256")
    return _CACHE[key]


def is_hidden(path: Path, root: Path) -> bool:
    """A path under root with a component starting with '.' (.ipynb_checkpoints, .DS_Store, .git)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def tree_fingerprint(root: Path, suffixes: tuple[str, ...]) -> str:
    """sha256 over the sorted relative paths, sizes and mtimes of the non-hidden files with these
    suffixes under root: adding, removing, replacing or touching an image changes it."""
    h = hashlib.sha256()
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes and not is_hidden(p, root)
    )
    for path in files:
        stat = path.stat()
        h.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def tensors_sha256(tensors: list) -> str:
    """sha256 over the dtypes, shapes and bytes of tensors, in order: data built in memory (a user's
    Dataset class) fingerprints by what it holds."""
    h = hashlib.sha256()
    for tensor in tensors:
        h.update(f"{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
        h.update(tensor.contiguous().numpy().tobytes())
    return h.hexdigest()
