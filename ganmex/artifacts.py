"""Stage artifacts: `artifacts/<stage>-<config hash>/`, written atomically and reused when finished.

A stage trains inside `<stage>-<hash>.partial/` (where Lightning's `last.ckpt` lets an interrupted
run resume) and only a complete directory is renamed to its final name, so a directory without
the `.partial` suffix is always finished.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganmex.errors import ArtifactLockedError, DamagedArtifactError, DiskFullError

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.ckpt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
RESUME_CHECKPOINT = "last.ckpt"
# seconds between tries while waiting for another run's lock with a timeout
LOCK_POLL_S = 0.2


def to_plain(value: Any) -> Any:
    """Resolve OmegaConf containers into plain python for hashing and saving."""
    if isinstance(value, DictConfig) or OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def config_hash(payload: Any, length: int = 10) -> str:
    """Stable short hash of a (resolved) config slice; key order does not matter."""
    text = json.dumps(to_plain(payload), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextlib.contextmanager
def naming_a_full_disk(path: Path) -> Iterator[None]:
    """Turn "no space left" while writing `path` into a DiskFullError that names the file and its disk
    (torch's own message for it is "inline_container.cc: unexpected pos", which names neither)."""
    try:
        yield
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
        raise DiskFullError(
            f"No space left on device while writing {path} ({free / 2**20:.0f} MiB free on that disk); free "
            f"space there (or set paths.artifact_dir to a larger disk) and rerun the same command"
        ) from error


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a same-directory temp file and rename, so readers never see half a file."""
    tmp = _temp_name(path)
    try:
        with naming_a_full_disk(path):
            tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save via a same-directory temp file, fsync and os.replace; no temp file survives a failure.
    Through a file handle, so that a full disk raises ENOSPC (named by naming_a_full_disk)."""
    import torch  # here, not at the top: config checks import this module

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with naming_a_full_disk(path), open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (see write_text_atomic)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=float))


def save_yaml_atomic(path: Path, config: Any) -> None:
    """OmegaConf.save, atomically."""
    write_text_atomic(path, OmegaConf.to_yaml(OmegaConf.create(to_plain(config))))


# environment variables that Lightning, torchrun and SLURM set to a process's rank
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_worker_rank() -> bool:
    """True in a distributed worker process other than the global rank 0."""
    return any(os.environ.get(name, "0") not in ("", "0") for name in RANK_VARIABLES)


@dataclass(frozen=True)
class Artifact:
    """A stage output directory `<root>/<stage>-<key>` (finished when it holds metrics.json).

    An explicit directory with any other name is read with `Artifact.from_dir`, which takes the
    kind from its config.yaml; then `key` is empty and `name` keeps the directory's real name.
    """

    stage: str
    key: str
    root: Path
    name: str | None = None

    @classmethod
    def from_dir(cls, path: str | Path) -> Artifact:
        """The artifact at an explicit directory: the kind is read from its config.yaml when that
        exists (the directory may be named anything), else parsed from a `<stage>-<key>` name."""
        path = Path(path)
        config_file = path / CONFIG
        if config_file.is_file():
            load = lambda file: OmegaConf.to_container(OmegaConf.load(file), resolve=False)  # noqa: E731
            config = read_artifact_file(config_file, load, None)
            kind = artifact_kind(config if isinstance(config, dict) else {})
            if kind:
                prefix = f"{kind}-"
                key = path.name[len(prefix) :] if path.name.startswith(prefix) else ""
                return cls(kind, key, path.parent, path.name)
        stage, dash, key = path.name.partition("-")
        if not dash or not stage or not key:
            raise FileNotFoundError(
                f"{path} is not an artifact directory: its name is not <stage>-<hash> and it has no "
                f"{CONFIG} saying which stage wrote it; pass a finished artifact directory"
            )
        return cls(stage, key, path.parent)

    @property
    def dir_name(self) -> str:
        return self.name or f"{self.stage}-{self.key}"

    @property
    def path(self) -> Path:
        return self.root / self.dir_name

    @property
    def partial_path(self) -> Path:
        return self.root / f"{self.dir_name}{PARTIAL_SUFFIX}"

    @property
    def lock_path(self) -> Path:
        return self.root / f"{self.dir_name}{LOCK_SUFFIX}"

    @contextlib.contextmanager
    def lock(self, timeout_s: float | None = None) -> Iterator[Path]:
        """Hold this artifact's exclusive lock (an flock on `<stage>-<key>.lock` beside it).

        Two runs of the same config must not resume from each other's half-written checkpoint nor
        replace each other's finished artifact: the second waits (logging that it does), then finds
        the artifact finished and reuses it. `timeout_s=None` waits for ever; otherwise
        ArtifactLockedError after that many seconds. The holder deletes the lock file as it lets go (no
        `.lock` is left behind); a waiter that then holds the lock of a deleted file opens the new one
        and locks again, so two runs never hold locks on different files. DDP worker ranks (a non-zero
        RANK, LOCAL_RANK or NODE_RANK) do not lock: they belong to the run whose rank 0 holds the lock.
        """
        if is_worker_rank():  # the launching rank holds it for the whole run; waiting here would deadlock
            yield self.lock_path
            return
        self.root.mkdir(parents=True, exist_ok=True)
        handle = self._acquire(timeout_s)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield self.lock_path
        finally:
            self.lock_path.unlink(missing_ok=True)  # still locked: no waiter can have the new file yet
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _acquire(self, timeout_s: float | None):
        """An open, flock-ed handle on the lock file that is still at `lock_path`."""
        while True:
            handle = open(self.lock_path, "a+")
            try:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("another run holds %s; waiting", self.lock_path)
                    self._wait_for_lock(handle, timeout_s)
            except BaseException:
                handle.close()
                raise
            if self._is_current(handle):
                return handle
            handle.close()  # the previous holder deleted the file we waited on: lock the new one

    def _is_current(self, handle) -> bool:
        try:
            return os.fstat(handle.fileno()).st_ino == os.stat(self.lock_path).st_ino
        except FileNotFoundError:
            return False

    def _wait_for_lock(self, handle, timeout_s: float | None) -> None:
        if timeout_s is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ArtifactLockedError(
                        f"another run has held {self.lock_path} for more than {timeout_s:g} s; wait for it "
                        f"to finish, or delete the lock file if no such run is alive"
                    ) from None
                time.sleep(LOCK_POLL_S)

    @property
    def exists(self) -> bool:
        return (self.path / METRICS).is_file()

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def metrics(self) -> dict:
        return read_artifact_file(self.path / METRICS, lambda p: json.loads(p.read_text()), self.stage)

    def config(self) -> dict:
        return read_artifact_file(self.path / CONFIG, _load_yaml, self.stage)

    def begin(self) -> Path:
        """Create (or reopen, to resume) the partial directory and return it."""
        self.partial_path.mkdir(parents=True, exist_ok=True)
        return self.partial_path

    def discard_empty_partial(self) -> None:
        """Remove the partial directory when nothing was written into it (a run that failed to start)."""
        if self.partial_path.is_dir() and not any(self.partial_path.iterdir()):
            self.partial_path.rmdir()

    def resume_checkpoint(self) -> Path | None:
        ckpt = self.partial_path / RESUME_CHECKPOINT
        return ckpt if ckpt.is_file() else None

    def commit(self, state: dict, config: Any, metrics: dict) -> Path:
        """Write checkpoint, config (with `stage: <kind>`) and metrics into the partial dir, then
        rename it into place. Call it while holding `lock()`."""
        work = self.begin()
        save_atomic(state, work / CHECKPOINT)
        record = to_plain(config)
        if isinstance(record, dict):
            record = {"stage": self.stage, **{k: v for k, v in record.items() if k != "stage"}}
        save_yaml_atomic(work / CONFIG, record)
        write_json_atomic(work / METRICS, metrics)
        resume = work / RESUME_CHECKPOINT
        if resume.exists():
            resume.unlink()
        if self.path.exists():  # a stale unfinished directory from an older layout
            shutil.rmtree(self.path)
        os.replace(work, self.path)
        log.info("wrote %s artifact %s", self.stage, self.path)
        return self.path


def newest_artifact(root: str | Path, stage: str) -> Path:
    """The most recently finished `<stage>-<hash>` directory under root (for scripts and notebooks)."""
    finished = [p for p in Path(root).glob(f"{stage}-*") if (p / METRICS).is_file()]
    if not finished:
        raise FileNotFoundError(
            f"no finished {stage}-<hash> artifact under {root}; run `python train.py` to create one"
        )
    return max(finished, key=lambda p: (p / METRICS).stat().st_mtime)


def artifact_kind(config: dict) -> str | None:
    """Which stage wrote an artifact: recorded as `stage`, else inferred from its config sections."""
    if config.get("stage"):
        return str(config["stage"])
    return next((k for k in ("gan", "autoencoder", "oracle", "classifier") if k in config), None)


# how to create each kind of artifact, for error messages
CREATE_COMMAND = {
    "classifier": "python train.py stage=classifier",
    "oracle": "python train.py stage=oracle",
    "gan": "python train.py stage=gan",
    "autoencoder": "python train.py stage=autoencoder autoencoder=conv_ae",
}


# what a loader reads from each kind's config.yaml: a file cut short lacks some of it
REQUIRED_KEYS = {
    "classifier": ("dataset_info", "classifier.net"),
    "oracle": ("dataset_info", "oracle.net"),
    "gan": ("dataset_info", "gan.generator"),
}


def _load_yaml(path: Path) -> dict:
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(config, dict):
        raise ValueError(f"it holds a {type(config).__name__}, not a mapping")
    return config


def damaged(path: Path, error: BaseException, kind: str | None) -> DamagedArtifactError:
    """The one-line error for an artifact file that is empty, cut short or unparsable."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    create = CREATE_COMMAND.get(kind or "", "python train.py")
    return DamagedArtifactError(
        f"{path} is damaged or cut short ({type(error).__name__}: {detail}); copy the artifact again, "
        f"or delete {path.parent} and rerun `{create}` to recreate it"
    )


def read_artifact_file(path: Path, reader: Any, kind: str | None) -> Any:
    """`reader(path)`, with an empty, cut-short or unparsable file named in one line with the fix."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ValueError("the file is empty")
        return reader(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch, yaml and json each raise their own types for a damaged file
        raise damaged(path, error, kind) from error


def check_required(config: dict, path: Path, kind: str | None) -> None:
    """A config.yaml cut short parses, but lacks what the loader reads ("Missing key net")."""
    for dotted in REQUIRED_KEYS.get(kind or "", ()):
        node: Any = config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise damaged(path, KeyError(f"no {dotted}"), kind)


def load_artifact_dir(path: str | Path, kinds: tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """(config, checkpoint state) of a finished artifact directory of one of `kinds`, with a clear
    error for an unfinished directory, a missing file or an artifact of another kind."""
    path = Path(path)
    wanted = " or ".join(kinds) if kinds else "stage"
    create = CREATE_COMMAND.get(kinds[0], "python train.py") if kinds else "python train.py"
    if path.name.endswith(PARTIAL_SUFFIX):
        raise FileNotFoundError(
            f"{path} is an unfinished {wanted} artifact (a run was interrupted); rerun `{create}`"
        )
    if not (path / METRICS).is_file() or not (path / CHECKPOINT).is_file():
        raise FileNotFoundError(
            f"no finished {wanted} artifact at {path} (expected {CHECKPOINT}, {CONFIG} and {METRICS}); "
            f"create one with `{create}`"
        )
    config = read_artifact_file(path / CONFIG, _load_yaml, kinds[0] if kinds else None)
    kind = artifact_kind(config)
    if kinds is not None and kind not in kinds:
        raise FileNotFoundError(
            f"{path} is a {kind} artifact, not a {wanted} artifact; pass a {kinds[0]}-<hash> directory"
        )
    import torch  # here, not at the top: config checks import this module

    def load(file: Path) -> Any:
        return torch.load(file, map_location="cpu", weights_only=False)

    return config, read_artifact_file(path / CHECKPOINT, load, kind)
