"""Start-up checks of config types, image size and the GAN's balanced batch (pipeline/validate.py)."""

from __future__ import annotations

import pytest

from ganmex.errors import ConfigError
from ganmex.pipeline.validate import check_config


@pytest.mark.parametrize(
    "override, message",
    [
        ("classifier.optimizer.lr=abc", "classifier.optimizer.lr='abc' must be a number (str given)"),
        ("gan.g_optimizer.lr=fast", "gan.g_optimizer.lr='fast' must be a number"),
        ("dataset.batch_size=2.5", "dataset.batch_size=2.5 must be an integer (float given)"),
        ("seed=[1]", "seed=[1] must be an integer"),
        ("seed=abc", "seed='abc' must be an integer (str given)"),
    ],
)
def test_non_numbers_in_numeric_keys_name_the_key_and_type(make_config, override, message):
    with pytest.raises(ConfigError) as info:
        check_config(make_config([override]))
    assert message in str(info.value) and "pass e.g." in str(info.value)


def test_image_size_the_constructor_accepts_but_the_data_does_not_fits_fails_at_start_up(make_config):
    with pytest.raises(ConfigError) as info:
        check_config(make_config(["dataset.image_size=8"]))
    assert str(info.value) == (
        "dataset.image_size=8 but mnist_embedded images are 28x28 and this dataset is not resized; "
        "set dataset.image_size=28"
    )


def test_torchvision_sets_have_their_native_sizes(make_config):
    with pytest.raises(ConfigError, match=r"dataset.image_size=28 but cifar10 images are 32x32"):
        check_config(make_config(["dataset=cifar10", "classifier=cifar_cnn", "dataset.image_size=28"]))
    check_config(make_config(["dataset=cifar10", "classifier=cifar_cnn"]))


def test_dry_forward_catches_sizes_that_fail_in_the_forward_pass(make_config):
    # the check runs before the native-size check, so the message is about the network
    with pytest.raises(ConfigError, match="dataset.image_size=4 does not fit classifier=mnist_cnn"):
        check_config(make_config(["dataset.image_size=4"]))


def test_gan_batch_smaller_than_the_classes_names_gan_batch_size(make_config):
    with pytest.raises(ConfigError) as info:
        check_config(make_config(["gan.batch_size=3"]))
    message = str(info.value)
    assert message.startswith("gan.batch_size=3 is smaller than dataset.num_classes=10")
    assert "gan.batch_size=20" in message


def test_gan_batch_falls_back_to_the_dataset_batch_and_says_so(make_config):
    with pytest.raises(
        ConfigError, match=r"dataset.batch_size \(the GAN's batch while gan.batch_size is null\)=4"
    ):
        check_config(make_config(["gan.batch_size=null", "dataset.batch_size=4"]))
    check_config(make_config(["gan=none", "dataset.batch_size=4"]))  # no GAN, no constraint


def test_gan_batch_not_a_multiple_is_refused_with_both_neighbours(make_config):
    """25 and 20 would train the identical network (2 images per class) under two artifact hashes."""
    with pytest.raises(ConfigError) as info:
        check_config(make_config(["gan.batch_size=25"]))
    message = str(info.value)
    assert message.startswith("gan.batch_size=25 is not a multiple of dataset.num_classes=10")
    assert "gan.batch_size=20 or gan.batch_size=30" in message
    check_config(make_config(["gan.batch_size=20"]))


def test_a_negative_budget_is_named_with_a_positive_example(make_config):
    with pytest.raises(ConfigError, match=r"gan.trainer.max_steps=-5 must be > 0; pass a positive value"):
        check_config(make_config(["gan.trainer.max_steps=-5"]))


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "evaluation.num_images=abc",
            "evaluation.num_images='abc' must be an integer (str given); pass e.g.",
        ),
        ("evaluation.num_images=-5", "evaluation.num_images=-5 must be > 0 or null (the whole test split)"),
        (
            "evaluation.metrics.deletion.patch_size=big",
            "evaluation.metrics.deletion.patch_size='big' must be",
        ),
        ("attribution.occlusion.stride=x", "attribution.occlusion.stride='x' must be a number (str given)"),
        ("gan.generator.conv_dim=wide", "gan.generator.conv_dim='wide' must be a number (str given)"),
    ],
)
def test_every_groups_numbers_are_checked_at_start_up(make_config, override, message):
    """Not only the training keys: the evaluate stage's values fail before anything trains."""
    with pytest.raises(ConfigError) as info:
        check_config(make_config([override]))
    assert str(info.value).startswith(message)


def test_numbers_come_from_the_shipped_configs_and_words_stay_allowed(make_config):
    from ganmex.pipeline.validate import shipped_number_keys

    assert {"num_images", "patch_size", "stride", "conv_dim", "sigma"} <= shipped_number_keys()
    assert "devices" not in shipped_number_keys() and "precision" not in shipped_number_keys()
    check_config(make_config(["trainer.devices=auto", "evaluation.num_images=null"]))


def test_a_mean_with_more_values_than_channels_names_dataset_mean(make_config):
    with pytest.raises(ConfigError) as info:
        check_config(make_config(["dataset.mean=[0.5,0.5,0.5]"]))  # mnist_embedded: channels=1
    assert str(info.value) == (
        "dataset.mean=[0.5, 0.5, 0.5] has 3 values for dataset.channels=1; give one per channel, "
        "e.g. dataset.mean=[0.5]"
    )
