"""The quiet filters drop exactly the known messages from the known modules, and nothing else."""

from __future__ import annotations

import logging
import warnings

import pytest

from ganmex.quiet import KNOWN_LOG_RECORDS, DropMessages, install_quiet_filters, route_lightning_logs

LEAFSPEC = (
    "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
    "treespec.is_leaf()` instead."
)
LEAFSPEC_MODULE = "lightning.pytorch.utilities._pytree"
LITLOGGER = (
    "💡 Tip: For seamless cloud logging and experiment tracking, try installing "
    "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger, which logs metrics and artifacts "
    "automatically to the Lightning Experiments platform."
)


@pytest.fixture
def quiet():
    """Install the filters inside a warnings sandbox that records everything else; undo the log filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # beats pyproject's `ignore::DeprecationWarning` inside the sandbox
        install_quiet_filters()  # inserted in front of "always", so only its own entries ignore anything
        yield caught
    for name in {k.logger for k in KNOWN_LOG_RECORDS}:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, DropMessages)]:
            logger.removeFilter(f)


def _warn_from(module: str, message: str, category: type[Warning]) -> None:
    warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 21, module=module)


def test_known_warning_from_its_module_is_dropped(quiet):
    _warn_from(LEAFSPEC_MODULE, LEAFSPEC, FutureWarning)
    assert quiet == []


def test_same_text_from_another_module_still_shows(quiet):
    _warn_from("ganmex.models.stargan", LEAFSPEC, FutureWarning)
    _warn_from("lightning.pytorch.utilities._pytree_extra", LEAFSPEC, FutureWarning)  # prefix is not enough
    assert [str(w.message) for w in quiet] == [LEAFSPEC, LEAFSPEC]


def test_unrelated_warnings_from_the_silenced_module_still_show(quiet):
    _warn_from(LEAFSPEC_MODULE, "something else is deprecated", DeprecationWarning)
    _warn_from("lightning.pytorch.callbacks.model_checkpoint", "Checkpoint directory exists", UserWarning)
    _warn_from("ganmex.training.ganmex", "an unrelated user warning", UserWarning)
    assert [w.category for w in quiet] == [DeprecationWarning, UserWarning, UserWarning]


def test_manual_optimisation_checkpoint_warning_is_dropped(quiet):
    text = (
        "Using ModelCheckpoint with manual optimization and every_n_train_steps, but no "
        "pre-optimization state was saved. The checkpoint will contain the model state AFTER optimization."
        "\nExample:\n..."
    )
    _warn_from("lightning.pytorch.callbacks.model_checkpoint", text, UserWarning)
    assert quiet == []


def test_real_lightning_leafspec_warning_is_dropped():
    """The real call path: Lightning's _pytree builds a LeafSpec; it warns without the filter, not with it."""
    from lightning.pytorch.utilities._pytree import _tree_flatten

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tree_flatten(1.0)
        assert any("LeafSpec" in str(w.message) for w in caught), "torch no longer warns: drop the filter"
        caught.clear()
        install_quiet_filters()
        _tree_flatten(1.0)
        assert caught == []


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize(
    "name", ["lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"]
)
def test_log_filter_drops_only_the_known_records(quiet, name):
    logger = logging.getLogger(name)
    other = logging.getLogger("ganmex.test_quiet")
    other.setLevel(logging.INFO)
    logger.setLevel(logging.INFO)
    handler = _Collect()
    logger.addHandler(handler)
    other.addHandler(handler)
    try:
        logger.info(LITLOGGER)
        logger.info("GPU available: %s, used: %s", False, False)
        logger.info("TPU available: False, using: 0 TPU cores")
        logger.info("GPU available: True (cuda), used: False")  # worth seeing: kept
        logger.info("`Trainer.fit` stopped: `max_steps=10` reached.")
        other.info(LITLOGGER)  # same text, another logger: kept
    finally:
        logger.removeHandler(handler)
        other.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert handler.messages == [
        "GPU available: True (cuda), used: False",
        "`Trainer.fit` stopped: `max_steps=10` reached.",
        LITLOGGER,
    ]


def test_install_twice_keeps_one_filter_per_logger(quiet):
    install_quiet_filters()
    logger = logging.getLogger("lightning.pytorch.accelerators.cuda")
    assert sum(isinstance(f, DropMessages) for f in logger.filters) == 1


def test_limit_val_batches_echo_dropped_only_for_the_configured_value(quiet):
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    handler = _Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("`Trainer(limit_val_batches=1)` was configured so 1 batch will be used.")
        logger.info("`Trainer(limit_train_batches=1)` was configured so 1 batch per epoch will be used.")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert handler.messages == [
        "`Trainer(limit_train_batches=1)` was configured so 1 batch per epoch will be used."
    ]


def test_route_lightning_logs_prints_each_line_once_through_the_root_handlers(caplog):
    import lightning  # noqa: F401

    names = ("lightning", "lightning.pytorch", "lightning.fabric")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names}
    own = logging.StreamHandler()  # what `import lightning` attaches
    logging.getLogger("lightning").addHandler(own)
    try:
        caplog.set_level(logging.INFO)  # pytest's handler sits on the root logger, as Hydra's do
        route_lightning_logs()
        for n in names:
            logger = logging.getLogger(n)
            assert logger.propagate
            assert not [h for h in logger.handlers if type(h) is logging.StreamHandler]
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("`Trainer.fit` stopped")
        assert [r.getMessage() for r in caplog.records] == ["`Trainer.fit` stopped"]
    finally:
        for n, (handlers, propagate) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:] = handlers
            logger.propagate = propagate


def test_mid_epoch_resume_warning_is_dropped_only_from_the_epoch_loop(quiet):
    text = (
        "You're resuming from a checkpoint that ended before the epoch ended and your dataloader is not "
        "resumable. This can cause unreliable results if further training is done."
    )
    _warn_from("lightning.pytorch.loops.training_epoch_loop", text, UserWarning)
    assert quiet == []
    _warn_from("ganmex.training.ganmex", text, UserWarning)
    assert [w.category for w in quiet] == [UserWarning]
