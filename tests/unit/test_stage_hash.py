"""Artifact hashes depend on values, not on how the YAML was typed; upstream stages come from one
declaration (stage_graph.NEEDS) for the runner's order, `stage=X`'s upstream runs and the hash."""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from ganmex.pipeline.runner import ORDER, selected_stages
from ganmex.pipeline.stage import HASH_VERSION, by_value, stage_artifact
from ganmex.pipeline.stage_graph import NEEDS, stage_order


def test_35_and_35_0_hash_the_same_and_a_real_change_does_not(make_config):
    as_int = stage_artifact(make_config(["gan.loss.lambda_sim=35"]), "gan")
    as_float = stage_artifact(make_config(["gan.loss.lambda_sim=35.0"]), "gan")
    other = stage_artifact(make_config(["gan.loss.lambda_sim=35.5"]), "gan")
    assert as_int.key == as_float.key and other.key != as_int.key
    assert by_value({"a": [1.0, 2.5, True], "b": 0.0}) == {"a": [1, 2.5, True], "b": 0}


def test_the_gan_hash_follows_its_classifier_through_the_declared_needs(make_config, monkeypatch):
    base = make_config()
    changed = make_config(["classifier.optimizer.lr=0.002"])
    assert stage_artifact(base, "classifier").key != stage_artifact(changed, "classifier").key
    assert stage_artifact(base, "gan").key != stage_artifact(changed, "gan").key  # gan needs classifier
    assert stage_artifact(base, "oracle").key == stage_artifact(changed, "oracle").key  # oracle does not
    explicit = make_config(["classifier.artifact=/somewhere/classifier-0123456789"])
    assert stage_artifact(explicit, "gan").key != stage_artifact(base, "gan").key
    import ganmex.pipeline.stage as stage

    before = stage_artifact(base, "classifier").key
    monkeypatch.setattr(stage, "HASH_VERSION", HASH_VERSION + 1)
    assert stage_artifact(base, "classifier").key != before  # a new hash_version orphans old artifacts


def test_runner_order_and_upstream_runs_come_from_needs(make_config):
    assert ORDER == ("classifier", "gan", "oracle", "autoencoder", "evaluate")
    assert selected_stages(make_config(["stage=gan"])) == ["classifier", "gan"]
    assert stage_order({"b": ("a",), "a": ()}) == ("a", "b")
    with pytest.raises(ValueError, match="stage dependencies form a cycle: a -> b -> a"):
        stage_order({"a": ("b",), "b": ("a",)})
    assert set(NEEDS["evaluate"]) == set(ORDER) - {"evaluate"}
    cfg = make_config(["stage=gan"])
    with open_dict(cfg):
        cfg.run_upstream = False
    assert selected_stages(cfg) == ["gan"]
