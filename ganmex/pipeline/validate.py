"""Start-up checks: fail in the first second with the key, the bad value and the fix.

`check_config` runs them all; the runner calls it before any stage starts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ganmex.errors import ConfigError, check_choice

log = logging.getLogger(__name__)

POSITIVE_KEYS = ("lr", "batch_size", "eval_batch_size", "image_size", "max_epochs", "max_steps", "steps")
# leaves that must be whole numbers wherever they appear (null allowed: "use the default")
INTEGER_KEYS = (
    "batch_size",
    "eval_batch_size",
    "image_size",
    "max_epochs",
    "max_steps",
    "steps",
    "num_steps",
    "num_classes",
    "channels",
    "num_workers",
    "seed",
    "n_critic",
    "checkpoint_every_n_steps",
    "log_every_n_steps",
    "num_images",
    "expensive_images",
    "grid_images",
)
# leaves that must be numbers (int or float); also any `*_lr`, `lambda_*` and `min_*` leaf
NUMBER_KEYS = (
    *INTEGER_KEYS,
    "lr",
    "weight_decay",
    "momentum",
    "val_fraction",
    "test_fraction",
    "ema_decay",
    "stdevs",
    "network_timeout_s",
)
# the shipped config groups: a leaf that holds a number in every file that sets it must hold a number
CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# numbers in the shipped YAMLs that also take words elsewhere (Lightning's `devices=auto`)
NOT_ONLY_NUMBERS = ("devices",)
# dotted keys that must be >= 1 or null (null: the whole split / the default)
AT_LEAST_ONE_OR_NULL = {"evaluation.num_images": "null (the whole test split)"}
# images in the dry forward pass that checks a classifier fits the data (2: BatchNorm-safe in eval)
DRY_BATCH = 2


def _walk(node: Any, prefix: str = "", containers: bool = False) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf; of every dict/list node too when `containers`."""
    if containers and prefix and isinstance(node, DictConfig | ListConfig):
        yield prefix.rstrip("."), node
    if isinstance(node, DictConfig):
        for key in node.keys():
            if key == "hydra":
                continue
            try:
                value = node[key]
            except Exception:  # unresolvable interpolations (hydra:...) are checked where they are used
                continue
            yield from _walk(value, f"{prefix}{key}.", containers)
    elif isinstance(node, ListConfig):
        for i, value in enumerate(node):
            yield from _walk(value, f"{prefix}{i}.", containers)
    else:
        yield prefix.rstrip("."), node


def _is_number_key(leaf: str) -> bool:
    return (
        leaf in NUMBER_KEYS
        or leaf.endswith("_lr")
        or leaf.startswith(("lambda_", "min_"))
        or leaf in shipped_number_keys()
    )


def _raw_leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for child_key, value in node.items():
            yield from _raw_leaves(value, str(child_key))
    elif isinstance(node, list):
        for value in node:
            yield from _raw_leaves(value, "")  # list items have no key of their own
    elif key:
        yield key, node


@functools.cache
def shipped_number_keys(config_dir: Path = CONFIG_DIR) -> frozenset[str]:
    """Leaf names that are numbers wherever a shipped YAML sets them (`num_images`, `patch_size`, ...),
    so that every group's numbers are checked at start-up without a list to keep up to date. A name that
    is ever a string or a bool (`devices: auto`) is left out; interpolations and nulls say nothing."""
    numbers, others = set(), set()
    for path in sorted(config_dir.rglob("*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for key, value in _raw_leaves(raw):
            if value is None or (isinstance(value, str) and value.startswith("${")):
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            (numbers if number else others).add(key)
    return frozenset(numbers - others - set(NOT_ONLY_NUMBERS))


def check_types(cfg: DictConfig) -> None:
    """Numeric keys hold numbers (`classifier.optimizer.lr=abc` fails here, not deep in the optimiser);
    integer keys hold whole numbers. null means 'the default' and passes."""
    for path, value in _walk(cfg, containers=True):
        leaf = path.rsplit(".", 1)[-1]
        if value is None or not _is_number_key(leaf):
            continue
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        wanted = "an integer" if leaf in INTEGER_KEYS else "a number"
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or (leaf in INTEGER_KEYS and isinstance(value, float) and not value.is_integer()):
            raise ConfigError(
                f"{path}={value!r} must be {wanted} ({type(value).__name__} given); "
                f"pass e.g. {path}={_example(leaf)}"
            )


def check_positive(cfg: DictConfig) -> None:
    """Numeric keys hold numbers (check_types), and learning rates, batch sizes, sizes and budgets are
    > 0 (max_steps=-1 means 'unlimited')."""
    check_types(cfg)
    for path, value in _walk(cfg):
        leaf = path.rsplit(".", 1)[-1]
        if not (leaf in POSITIVE_KEYS or leaf.endswith("_lr")):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if leaf in ("max_steps", "max_epochs") and value == -1:
            continue
        if value <= 0:
            raise ConfigError(
                f"{path}={value} must be > 0; pass a positive value, e.g. {path}={_example(leaf)}"
            )


def check_at_least_one(cfg: DictConfig) -> None:
    """Counts such as evaluation.num_images: checked here, not after the classifier and GAN trained."""
    for key, meaning in AT_LEAST_ONE_OR_NULL.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value < 1:
            raise ConfigError(f"{key}={value} must be > 0 or {meaning}; pass e.g. {key}=50")


def _example(leaf: str) -> str:
    return (
        "1e-3" if leaf.endswith("lr") else "64" if "batch" in leaf else "28" if leaf == "image_size" else "10"
    )


def check_image_size(cfg: DictConfig) -> None:
    """Datasets that are not resized (MNIST, CIFAR-10, ...) must be configured at their real size:
    a classifier built for 8 px would otherwise only fail on the first real 28 px batch."""
    from hydra.utils import get_class

    d = cfg.dataset
    target = d.get("_target_")
    native_size = getattr(get_class(target), "native_image_size", None) if target else None
    native = native_size(OmegaConf.to_container(d, resolve=True)) if native_size else None
    if native is not None and d.image_size != native:
        name = d.get("name") or get_class(target).name
        raise ConfigError(
            f"dataset.image_size={d.image_size} but {name} images are {native}x{native} "
            f"and this dataset is not resized; set dataset.image_size={native}"
        )


def check_normalisation(cfg: DictConfig) -> None:
    """One mean and one std per channel: `channels=1` with RGB statistics otherwise fails deep in the
    network ("expected input to have 1 channels, but got 3") without naming dataset.mean."""
    d = cfg.dataset
    for key in ("mean", "std"):
        values = d.get(key)
        if values is not None and len(values) != d.channels:
            example = ",".join(["0.5"] * d.channels)
            raise ConfigError(
                f"dataset.{key}={list(values)} has {len(values)} values for dataset.channels={d.channels}; "
                f"give one per channel, e.g. dataset.{key}=[{example}]"
            )


def check_classifier_fits(cfg: DictConfig) -> None:
    """Build the classifier on the dataset's image size and push one dummy batch through it, so a size
    that the constructor accepts but the forward pass does not fails at start-up too."""
    import torch

    from ganmex.data.info import DatasetInfo
    from ganmex.models.loading import build_classifier

    d = cfg.dataset
    if cfg.classifier.get("name") == "external":
        check_external_classifier(cfg)
        return
    info = DatasetInfo("check", d.num_classes, d.channels, d.image_size, tuple(d.mean), tuple(d.std))
    try:
        net = build_classifier(cfg.classifier, info).eval()
        with torch.no_grad():
            logits = net(torch.zeros(DRY_BATCH, d.channels, d.image_size, d.image_size))
    except Exception as error:  # instantiate wraps the real error; show its message
        cause = error.__cause__ or error
        raise ConfigError(
            f"dataset.image_size={d.image_size} does not fit classifier={cfg.classifier.name}: {cause}"
        ) from error
    if tuple(logits.shape) != (DRY_BATCH, d.num_classes):
        raise ConfigError(
            f"classifier={cfg.classifier.name} gives logits of shape {tuple(logits.shape)} for "
            f"dataset.num_classes={d.num_classes}; expected ({DRY_BATCH}, {d.num_classes})"
        )
    check_image_size(cfg)


def check_external_classifier(cfg: DictConfig) -> None:
    """`classifier=external` without loading the model: a file to read, a format, and an input
    convention with one value per channel (the model itself is checked when it is imported)."""
    from ganmex.models.external import FORMAT_SETTINGS

    c, d = cfg.classifier, cfg.dataset
    if c.get("artifact"):
        return
    if not c.get("path"):
        raise ConfigError("classifier=external needs classifier.path=<your model file> (docs/own_model.md)")
    if not Path(str(c.path)).expanduser().is_file():
        raise ConfigError(f"classifier.path={c.path} does not exist; pass the model file's path")
    check_choice("classifier.format", c.get("format", "auto"), FORMAT_SETTINGS)
    convention = c.get("input") or {}
    for key in ("mean", "std"):
        values = convention.get(key)
        if values is not None and len(values) != d.channels:
            raise ConfigError(
                f"classifier.input.{key}={list(values)} has {len(values)} values but the dataset has "
                f"dataset.channels={d.channels}; give one value per channel"
            )
    if (convention.get("mean") is None) != (convention.get("std") is None):
        raise ConfigError("give classifier.input.mean and classifier.input.std together, or neither")


def check_gan_batch(cfg: DictConfig) -> None:
    """The GAN's class-balanced batch holds batch // num_classes images of every class, so it needs at
    least one per class, and a batch that is not a multiple is refused: it would train exactly the network
    of the multiple below it under another artifact hash (25 and 20 both train on batches of 20)."""
    gan = cfg.get("gan")
    if not isinstance(gan, DictConfig) or gan.get("name") == "none" or "generator" not in gan:
        return
    classes = cfg.dataset.num_classes
    key, batch = "gan.batch_size", gan.get("batch_size")
    if batch is None:
        batch = cfg.dataset.batch_size
        key = "dataset.batch_size (the GAN's batch while gan.batch_size is null)"
    if batch < classes:
        raise ConfigError(
            f"{key}={batch} is smaller than dataset.num_classes={classes}: every class-balanced GAN batch "
            f"needs at least one image per class; set gan.batch_size to a multiple of {classes}, "
            f"e.g. gan.batch_size={2 * classes}"
        )
    if batch % classes:
        lower = batch // classes * classes
        raise ConfigError(
            f"{key}={batch} is not a multiple of dataset.num_classes={classes}: each class-balanced GAN "
            f"batch would hold {lower} images, the same training as gan.batch_size={lower} under another "
            f"artifact hash; set gan.batch_size={lower} or gan.batch_size={lower + classes}"
        )


def check_accelerator(cfg: DictConfig) -> None:
    """`trainer=gpu` (or ddp) on a machine without CUDA fails in Lightning with a long message about
    devices; say which trainer to pick instead."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; run with trainer=cpu "
            f"(or trainer=ddp_cpu for several CPU processes)"
        )


def check_config(cfg: DictConfig) -> None:
    """Every start-up check, in order of cost."""
    check_positive(cfg)
    check_at_least_one(cfg)
    check_accelerator(cfg)
    check_gan_batch(cfg)
    check_normalisation(cfg)
    check_classifier_fits(cfg)
