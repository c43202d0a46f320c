"""Importing a user's model: formats read from the content, the input convention applied, and every
bad input refused with one line naming the file or key and the fix."""

from __future__ import annotations

import logging
import sys
import types

import pytest
import torch
from torch import nn

from ganmex.models.external import (
    ImportedClassifierWithFeatures,
    ModelImportError,
    detect_format,
    load_model_file,
    resolve_format,
    wrap_classifier,
)
from ganmex.models.import_checks import check_imported_classifier
from ganmex.training.ganmex import dropout_layers, dropout_sampled

SIZE, CLASSES = 8, 3
MEAN, STD = [0.5], [0.25]


class SmallNet(nn.Module):
    """A user's network: importable by `_target_` as tests.unit.test_external_classifier.SmallNet."""

    def __init__(self, hidden: int = 6, classes: int = CLASSES) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, hidden), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.head(self.body(x))


NET = {"_target_": f"{__name__}.SmallNet", "hidden": 6}


@pytest.fixture(scope="module")
def net() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet().eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(5, 1, SIZE, SIZE)


def save_all(net: nn.Module, images: torch.Tensor, folder) -> dict[str, object]:
    """The model in every format, each under a misleading extension: the content decides."""
    paths = {name: folder / f"{name}.onnx" for name in ("state_dict", "torchscript", "export", "lightning")}
    torch.save(net.state_dict(), paths["state_dict"])
    torch.jit.save(torch.jit.trace(net, images), str(paths["torchscript"]))
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(net, (images,), dynamic_shapes={"x": {0: batch}}), paths["export"])
    torch.save(
        {
            "state_dict": net.state_dict(),
            "pytorch-lightning_version": "2.6.0",
            "hyper_parameters": {"hidden": 6},
        },
        paths["lightning"],
    )
    return paths


def test_each_format_is_read_from_the_content_and_gives_the_models_logits(net, images, tmp_path):
    expected = net((images - MEAN[0]) / STD[0])
    for fmt, path in save_all(net, images, tmp_path).items():
        assert detect_format(path) == fmt
        model, found = load_model_file(path, net=NET if fmt in ("state_dict", "lightning") else None)
        assert found == fmt
        wrapped = wrap_classifier(model, MEAN, STD)
        assert not wrapped.training
        assert torch.allclose(wrapped(images), expected, atol=1e-5), fmt


def test_lightning_hyper_parameters_fill_the_constructor(net, images, tmp_path):
    path = save_all(net, images, tmp_path)["lightning"]
    model, _ = load_model_file(path, net={"_target_": NET["_target_"]})  # hidden=6 comes from the checkpoint
    assert model.head.in_features == 6


def test_feature_layer_exposes_that_modules_output(net, images):
    wrapped = wrap_classifier(net, MEAN, STD, feature_layer="body")
    assert isinstance(wrapped, ImportedClassifierWithFeatures)
    expected = net.body((images - MEAN[0]) / STD[0])
    assert torch.allclose(wrapped.features(images), expected)
    assert not hasattr(wrap_classifier(net, MEAN, STD), "features")
    with pytest.raises(
        ModelImportError, match=r"classifier.feature_layer=nope is not a hookable module.*body"
    ):
        wrap_classifier(net, MEAN, STD, feature_layer="nope")


def test_a_file_that_is_not_a_model_is_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("just some notes\n")
    with pytest.raises(ModelImportError, match=r"classifier.path=.*notes.pt is not a PyTorch model file"):
        load_model_file(text)
    with pytest.raises(ModelImportError, match=r"does not exist"):
        load_model_file(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_net_name_the_keys(net, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelImportError) as error:
        load_model_file(path, net={**NET, "hidden": 7})
    message = str(error.value)
    assert f"do not fit classifier.net._target_={NET['_target_']} (size mismatch for body.1.weight" in message
    assert "size mismatch" in message and "\n" not in message
    with pytest.raises(ModelImportError, match="holds state_dict weights only; set classifier.net._target_"):
        load_model_file(path)


def test_a_target_that_cannot_be_imported_is_named(net, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelImportError, match=r"classifier.net._target_=no_such_pkg.Net cannot be built"):
        load_model_file(path, net={"_target_": "no_such_pkg.Net"})


def test_a_pickled_whole_module_needs_trust_pickle(net, tmp_path):
    module = types.ModuleType("pickled_user_net")
    module.SmallNet = SmallNet
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.raises(ModelImportError, match=r"pickled Python object.*classifier.trust_pickle=true"):
        load_model_file(path)
    model, fmt = load_model_file(path, trust_pickle=True)
    assert fmt == "pickle" and isinstance(model, SmallNet)
    assert resolve_format(path, trust_pickle=True) == "pickle"  # what the import stage reads it as
    assert sys.modules[__name__].SmallNet is SmallNet


def test_a_model_returning_a_tuple_is_refused(images):
    class Pair(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :CLASSES], x

    with pytest.raises(ModelImportError, match="returns a tuple, not a logits tensor"):
        check_imported_classifier(wrap_classifier(Pair()), images, CLASSES)


def test_classes_channels_and_size_that_differ_from_the_data_are_refused(net, images):
    with pytest.raises(ModelImportError, match=r"returns shape \(5, 3\) for 5 images.*num_classes=10"):
        check_imported_classifier(wrap_classifier(net), images, 10)
    with pytest.raises(
        ModelImportError, match=r"fails on the dataset's images of shape 3x8x8 .*dataset.channels"
    ):
        check_imported_classifier(wrap_classifier(net), images.expand(-1, 3, -1, -1), CLASSES)
    with pytest.raises(ModelImportError, match=r"of shape 1x12x12"):
        check_imported_classifier(wrap_classifier(net), torch.rand(5, 1, 12, 12), CLASSES)


def test_a_model_that_samples_in_eval_mode_or_uses_batch_statistics_is_refused(images):
    class AlwaysDropout(nn.Module):
        def forward(self, x):
            return nn.functional.dropout(x.flatten(1)[:, :CLASSES], 0.5, training=True)

    with pytest.raises(ModelImportError, match="different logits for the same images in eval mode"):
        check_imported_classifier(wrap_classifier(AlwaysDropout()), images, CLASSES)

    class BatchStatistics(nn.Module):
        def forward(self, x):
            flat = x.flatten(1)[:, :CLASSES]
            return flat - flat.mean(0)

    with pytest.raises(ModelImportError, match="depend on the rest of its batch"):
        check_imported_classifier(wrap_classifier(BatchStatistics()), images, CLASSES)


def test_an_export_with_a_static_batch_size_names_dynamic_shapes(net, images, tmp_path):
    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(net, (images,)), path)
    model, _ = load_model_file(path)
    with pytest.raises(ModelImportError, match=r"takes a batch of 5 but not of 1 image.*dynamic_shapes"):
        check_imported_classifier(wrap_classifier(model), images, CLASSES)


def test_a_torchscript_model_holding_tensors_on_another_device_says_to_resave_from_cpu(images, tmp_path):
    class OnMeta(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :3] + torch.zeros(3, device="meta")

    path = tmp_path / "meta.pt"
    torch.jit.save(torch.jit.script(OnMeta()), str(path))
    model, fmt = load_model_file(path)
    assert fmt == "torchscript"
    with pytest.raises(
        ModelImportError, match=r"fails on cpu the dataset's images .*re-save it from the CPU"
    ):
        check_imported_classifier(wrap_classifier(model), images, CLASSES)


def test_probabilities_are_accepted_with_a_warning(net, images, caplog):
    with caplog.at_level(logging.WARNING):
        check_imported_classifier(wrap_classifier(nn.Sequential(net, nn.Softmax(1))), images, CLASSES)
    assert "outputs are probabilities (rows sum to 1), not logits" in caplog.text
    caplog.clear()
    check_imported_classifier(wrap_classifier(net), images, CLASSES)
    assert "probabilities" not in caplog.text


def test_sampled_dropout_reaches_an_imported_models_dropout_and_never_its_batch_norm(images):
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Dropout(0.5), nn.LazyLinear(3)
    )
    net(images)
    wrapped = wrap_classifier(net)
    assert dropout_layers(wrapped) == [net[3]]
    with dropout_sampled(wrapped, True):
        assert net[3].training and not net[1].training
    assert not net[3].training
    scripted = wrap_classifier(torch.jit.trace(net.eval(), images))
    assert dropout_layers(scripted) == []  # compiled: cls_dropout turns itself off (test_stargan)


def test_the_import_and_the_gan_trained_against_it_are_hashed_by_the_files_bytes(net, make_config, tmp_path):
    from ganmex.pipeline.classifier_stage import classifier_artifact
    from ganmex.pipeline.stage import stage_artifact

    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    cfg = make_config(
        ["classifier=external", f"classifier.path={path}", f"classifier.net._target_={NET['_target_']}"]
    )
    classifier, gan = classifier_artifact(cfg), stage_artifact(cfg, "gan")
    assert stage_artifact(cfg, "classifier") == classifier
    torch.save({k: v + 1 for k, v in net.state_dict().items()}, path)  # same name, other weights
    assert classifier_artifact(cfg) != classifier and stage_artifact(cfg, "gan") != gan
