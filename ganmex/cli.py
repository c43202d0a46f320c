"""Hydra entry points. `train.py`, `evaluate.py` and the console scripts only call these.

Module level imports stay light (hydra, omegaconf, stdlib): `--help` and a config error must answer in a
second or two, so anything that pulls in torch or Lightning is imported inside the functions.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganmex.data.errors import DatasetNotFoundError  # light: ganmex.data resolves its attributes lazily
from ganmex.errors import ConfigError
from ganmex.quiet import install_quiet_filters
from ganmex.sweep_failures import clear_failure, in_multirun, record_failure
from ganmex.termination import Terminated, sigterm_raises

log = logging.getLogger("ganmex")
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
USER_ERRORS = (ConfigError, DatasetNotFoundError, FileNotFoundError)


def finish_wandb(failed: bool) -> None:
    """Close any W&B run so the next job of a multirun starts its own (and a crash is marked)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def uses_wandb(cfg: DictConfig) -> bool:
    """Whether a W&B logger is configured (the W&B helpers import pandas: skip them when not)."""
    logger = cfg.get("logger")
    return isinstance(logger, DictConfig) and logger.get("wandb") is not None


def wandb_hint(error: BaseException) -> str | None:
    """One line for a W&B run that cannot start online (no API key, no network), else None."""
    if not type(error).__module__.startswith("wandb"):
        return None
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"W&B could not start an online run ({type(error).__name__}: {detail}); run `wandb login` on a "
        f"machine with network access, or log offline with WANDB_MODE=offline (logger.wandb.offline=true) "
        f"and upload later with `wandb sync`"
    )


def full_traceback_requested() -> bool:
    """HYDRA_FULL_ERROR=1 or hydra.verbose asks for the traceback behind a one-line error."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return True
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and bool(HydraConfig.get().verbose)


def run_job(cfg: DictConfig) -> dict | None:
    """Run the pipeline; user errors become one readable line and exit code 1, SIGTERM exit code 143.

    In a `-m` sweep a failed job records its error and returns None, so that the other jobs still run;
    the sweep then ends with a summary of the failed jobs and exit code 1 (ganmex/sweep_failures.py)."""
    install_quiet_filters()  # known-harmless library messages only, by text and module (ganmex/quiet.py)
    from ganmex.pipeline.runner import run

    failed = True
    if in_multirun():
        clear_failure(cfg.paths.output_dir)
    try:
        with sigterm_raises():  # a preempted job must not look successful to its scheduler
            if uses_wandb(cfg):
                from ganmex.report.wandb_run import configure_wandb

                configure_wandb(cfg)  # group by sweep, tag with the overrides, log the config flat
            summary = run(cfg)
            from ganmex.report.run_summary import print_run_summary

            print_run_summary(summary, log)  # the closing block: numbers, times, run dir, outputs
            if "wandb" in sys.modules:
                from ganmex.report.wandb_run import log_run_summary

                log_run_summary(summary)
        failed = False
        return summary
    except Terminated as stop:
        log.error("%s; stopped with exit status %d", stop, stop.exit_code)
        raise SystemExit(stop.exit_code) from None
    except USER_ERRORS as error:
        if full_traceback_requested() and not in_multirun():
            raise
        log.error("%s", error)
        if in_multirun():
            record_failure(cfg.paths.output_dir, error)
            return None
        raise SystemExit(1) from None
    except Exception as error:
        hint = wandb_hint(error)
        if hint and not full_traceback_requested():
            log.error("%s", hint)
            if not in_multirun():
                raise SystemExit(1) from None
        elif not in_multirun():
            raise
        log.exception("this job of the sweep failed; the others go on")
        record_failure(cfg.paths.output_dir, error)
        return None
    finally:
        finish_wandb(failed)


def unknown_list_options(argv: list[str], config_dir: str = CONFIG_DIR) -> str | None:
    """A message for `group=[a,b]` overrides naming an option the group lacks, else None.

    Hydra lists a group's options for `group=x` but not for list-valued groups such as
    `attribution=[...]`; this check answers those in one line, before Hydra composes anything."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or not value.startswith("[") or "],[" in value or "." in key or "/" in key:
            continue
        group = Path(config_dir) / key
        if not group.is_dir():
            continue
        names = [name.strip() for name in value.strip("[]").split(",") if name.strip()]
        available = sorted(p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_"))
        missing = [name for name in names if name not in available]
        if missing:
            return (
                f"{key}={value}: conf/{key}/ has no option {', '.join(missing)}; "
                f"choose from {', '.join(available)}"
            )
    return None


def unquoted_non_ascii(argv: list[str]) -> str | None:
    """A message for an override whose value has non-ASCII characters outside quotes, else None
    (Hydra's parser answers those with `LexerNoViableAltException` and a caret)."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and not value.isascii() and value[:1] not in ("'", '"'):
            return (
                f"{arg}: Hydra reads non-ASCII characters only inside quotes; pass \"{key}='{value}'\" "
                f"(the outer double quotes are for your shell)"
            )
    return None


# the optional Hydra plugins of the `[sweeps]` extra, by the override that needs them
SWEEP_PLUGINS = {
    "hparams_search": "hydra_plugins.hydra_optuna_sweeper",
    "hydra/sweeper=optuna": "hydra_plugins.hydra_optuna_sweeper",
    "hydra/launcher=local": "hydra_plugins.hydra_joblib_launcher",
    "hydra/launcher=joblib": "hydra_plugins.hydra_joblib_launcher",
    "hydra/launcher=slurm": "hydra_plugins.hydra_submitit_launcher",
    "hydra/launcher=submitit": "hydra_plugins.hydra_submitit_launcher",
}


def missing_sweep_plugin(argv: list[str]) -> str | None:
    """A message naming `pip install -e ".[sweeps]"` when an override needs a plugin that is absent."""
    import importlib.util

    for arg in argv:
        if arg.partition("=")[2] in ("", "null"):
            continue
        plugin = next((m for prefix, m in SWEEP_PLUGINS.items() if arg.lstrip("+~").startswith(prefix)), None)
        if plugin and importlib.util.find_spec(plugin) is None:
            name = plugin.split(".")[-1]
            return f'{arg} needs the Hydra plugin {name}; install it with pip install -e ".[sweeps]"'
    return None


ARGV_CHECKS = (unknown_list_options, unquoted_non_ascii, missing_sweep_plugin)


def checks_list_options(main: Callable[[], object]) -> Callable[[], object]:
    """Run `main` (a Hydra entry point) only when the overrides pass ARGV_CHECKS: list-valued group options
    exist, non-ASCII values are quoted and the sweep plugins they need are installed."""

    @functools.wraps(main)
    def checked() -> object:
        for check in ARGV_CHECKS:
            problem = check(sys.argv[1:])
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                raise SystemExit(1)
        return main()

    return checked


@checks_list_options
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train the configured stages (classifier -> gan -> autoencoder -> evaluate).

    Returns the sweep objective when `hparams_search` sets one (Optuna reads it), else None."""
    from ganmex.pipeline.objective import failed_objective, objective_value

    summary = run_job(cfg)
    return objective_value(cfg, summary) if summary is not None else failed_objective(cfg)


@checks_list_options
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def evaluate(cfg: DictConfig) -> None:
    """Run only the last stage against finished artifacts."""
    run_job(cfg)
