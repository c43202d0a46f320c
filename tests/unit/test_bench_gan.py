"""The GAN benchmark's command line (scripts/bench_gan.py): variants and --set overrides of the shipped
config; a malformed one is one line naming the expected form."""

from __future__ import annotations

import pytest

from ganmex.bench.gan import bench_config, parse_variant, run_gan_bench


def test_variants_parse_into_dotlist_overrides():
    assert parse_variant("gp4:loss.gp_every=4,loss.lambda_sim=30") == (
        "gp4",
        ["loss.gp_every=4", "loss.lambda_sim=30"],
    )


@pytest.mark.parametrize("bad", ["gp4", "gp4:", ":a=1", "gp4:loss.gp_every"])
def test_a_malformed_variant_names_the_form(bad):
    with pytest.raises(ValueError, match=r"expected NAME:KEY=VALUE\[,KEY=VALUE\.\.\.\], e\.g\. gp4:"):
        parse_variant(bad)


def test_sets_change_the_shipped_config_for_every_run():
    shipped = bench_config()
    changed = bench_config(["batch_size=4", "loss.gp_every=7"])
    assert changed.batch_size == 4 and changed.loss.gp_every == 7
    assert changed.loss.lambda_sim == shipped.loss.lambda_sim
    with pytest.raises(ValueError, match="--set 'batch_size': expected KEY=VALUE"):
        bench_config(["batch_size"])


def test_a_bad_variant_fails_before_any_training():
    with pytest.raises(ValueError, match="'gp4'"):
        run_gan_bench(["gp4"], batches=1, warmup=1, rounds=1)
