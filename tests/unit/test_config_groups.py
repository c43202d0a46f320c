"""Every option of every config group composes, and what is cheap to build from it builds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import CONFIG_DIR
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganmex.data.base import DatasetInfo
from ganmex.errors import ConfigError
from ganmex.models.loading import build_classifier
from ganmex.pipeline.validate import check_config

CONF = Path(CONFIG_DIR)
# groups selected on the command line as `group=option`; hydra's own groups are composed by Hydra itself
SKIPPED_GROUPS = {"hydra"}
# options that need an optional plugin: (group, option) -> the module that provides it
PLUGINS = {("hparams_search", "gan_optuna"): "hydra_plugins.hydra_optuna_sweeper"}


def group_options() -> list[tuple[str, str]]:
    return sorted(
        (folder.name, path.stem)
        for folder in CONF.iterdir()
        if folder.is_dir() and folder.name not in SKIPPED_GROUPS
        for path in folder.glob("*.yaml")
        if not path.stem.startswith("_")
    )


def _info(cfg: DictConfig) -> DatasetInfo:
    d = cfg.dataset
    return DatasetInfo(
        d.get("name", "dataset"), d.num_classes, d.channels, d.image_size, tuple(d.mean), tuple(d.std)
    )


def _build_cheap_parts(cfg: DictConfig, group: str) -> None:
    """Instantiate the parts of the config that need no data, no training and no artifacts."""
    info = _info(cfg)
    shape = {"channels": info.channels, "num_classes": info.num_classes, "image_size": info.image_size}
    if cfg.classifier.name == "external":  # imports a file: without classifier.path it stops at start-up
        with pytest.raises(ConfigError, match=r"classifier=external needs classifier.path=<your model file>"):
            check_config(cfg)
    else:
        build_classifier(cfg.classifier, info)
    if cfg.get("oracle") is not None and cfg.oracle.get("name") != "none":
        build_classifier(cfg.oracle, info)
    if cfg.gan.get("name") != "none":
        instantiate(cfg.gan.generator, **shape)
        instantiate(cfg.gan.critic, **shape)
    if group == "attribution":
        from ganmex.explain.methods import build_methods

        assert build_methods(cfg.attribution)
    if group == "baselines":
        from ganmex.explain.baselines import instantiate_baselines

        assert instantiate_baselines(cfg.baselines)
    if group == "evaluation" and cfg.evaluation.get("name") != "none":
        for conf in cfg.evaluation.references.values():
            instantiate(conf)


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda v: str(v))
def test_every_group_option_composes_and_builds(make_config, group, option):
    plugin = PLUGINS.get((group, option))
    if plugin and not _importable(plugin):
        pytest.skip(f"{group}={option} needs the optional plugin {plugin} (pip install -e '.[sweeps]')")
    # in-fillers are not a top-level group: they are placed under a FIDO method's `infill` key
    override = f"+infill@attribution.fido_sdr.infill={option}" if group == "infill" else f"{group}={option}"
    cfg = make_config(["attribution=fido_sdr", override] if group == "infill" else [override])
    _build_cheap_parts(cfg, group)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
