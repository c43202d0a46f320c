"""The GAN Pareto rows are experiment presets: each composes, changes only what its comment says, and runs
with `python train.py -m stage=evaluate mode=gan_quality experiment=gan_pareto/<row>,...`."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

PRESETS = sorted((Path(__file__).resolve().parents[2] / "conf/experiment/gan_pareto").glob("*.yaml"))


def test_there_is_a_preset_per_row_and_the_default_row_is_the_shipped_config(make_config):
    assert {"default", "four_k", "ganmex_reference", "colored"} <= {p.stem for p in PRESETS}
    shipped = make_config(["stage=evaluate", "mode=gan_quality"])
    default = make_config(["stage=evaluate", "mode=gan_quality", "experiment=gan_pareto/default"])
    assert OmegaConf.to_container(default.gan) == OmegaConf.to_container(shipped.gan)


@pytest.mark.parametrize("preset", [p.stem for p in PRESETS])
def test_each_preset_composes_and_sets_its_values(make_config, preset):
    cfg = make_config([f"experiment=gan_pareto/{preset}", "stage=evaluate", "mode=gan_quality"])
    assert cfg.task_name == f"gan_pareto_{preset}"
    if preset == "four_k":
        assert cfg.gan.trainer.max_steps == 8000 and cfg.gan.loss.lambda_sim == 30
    if preset.startswith("colored"):
        assert cfg.dataset._target_.endswith("ColoredMNISTDataModule") and cfg.dataset.channels == 3


def test_the_batch20_rows_keep_the_batches_they_were_measured_with(make_config):
    """Rows measured on batches of 20 pin that batch and its learning rates, so that they mean today what
    their table says, whatever conf/gan/stargan.yaml ships."""
    shipped = make_config(["stage=evaluate", "mode=gan_quality"]).gan
    assert (shipped.batch_size, shipped.trainer.max_steps, shipped.g_optimizer.lr) == (80, 3600, 4e-4)
    assert (shipped.trainer.max_steps // 2) % shipped.trainer.val_check_interval == 0
    assert shipped.trainer.max_steps % shipped.checkpoint_every_n_steps == 0
    for row, max_steps in (("batch20", 12000), ("four_k", 8000), ("half_budget", 4000)):
        gan = make_config([f"experiment=gan_pareto/{row}", "stage=evaluate", "mode=gan_quality"]).gan
        assert gan.batch_size == 20 and gan.trainer.max_steps == max_steps, row
        assert gan.g_optimizer.lr == gan.d_optimizer.lr == 2e-4, row
        assert (max_steps // 2) % gan.trainer.val_check_interval == 0, row  # the last batch is validated
    reference = make_config(["gan=ganmex_reference"]).gan
    assert (reference.batch_size, reference.trainer.max_steps) == (10, 12000)
