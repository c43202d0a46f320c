"""Conv autoencoder: shapes and range, box masks, in-painting keeps observed pixels, artifact round trip."""

from __future__ import annotations

import pytest
import torch

from ganmex.artifacts import Artifact
from ganmex.models.autoencoder import ConvAutoencoder
from ganmex.models.loading import load_autoencoder
from ganmex.training.autoencoder import AutoencoderModule, random_box_masks


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_shapes_and_pixel_range(channels, size):
    ae = ConvAutoencoder(channels, size, width=4, latent_channels=2)
    out = ae(torch.rand(2, channels, size, size))
    assert out.shape == (2, channels, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_image_size_must_be_divisible_by_four():
    with pytest.raises(ValueError, match=r"image_size=30 must be divisible by 4"):
        ConvAutoencoder(1, 30)


def test_box_masks_have_the_requested_sizes():
    keep = random_box_masks((50, 1, 12, 12), 3, 3, 1, torch.Generator().manual_seed(0))
    assert keep.shape == (50, 1, 12, 12)
    assert torch.equal((1 - keep).sum((1, 2, 3)), torch.full((50,), 9.0))  # one 3x3 box each
    keep = random_box_masks((50, 1, 12, 12), 2, 5, 1, torch.Generator().manual_seed(0))
    holes = (1 - keep).sum((1, 2, 3))
    assert set(holes.tolist()) <= {4.0, 9.0, 16.0, 25.0} and len(set(holes.tolist())) > 1
    with pytest.raises(ValueError, match=r"min_size=5, max_size=3"):
        random_box_masks((1, 1, 8, 8), 5, 3)


def test_inpaint_keeps_observed_pixels():
    torch.manual_seed(0)
    ae = ConvAutoencoder(1, 8, width=4)
    x = torch.rand(3, 1, 8, 8)
    keep = random_box_masks(x.shape, 2, 4, 1, torch.Generator().manual_seed(1))
    filled = ae.inpaint(x, keep)
    assert torch.equal(filled[keep.expand_as(x) == 1], x[keep.expand_as(x) == 1])
    hole = keep.expand_as(x) == 0
    assert torch.allclose(filled[hole], ae(x * keep)[hole])


class Identity(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x


@pytest.mark.parametrize("mask_prob", [0.0, 1.0])
def test_training_loss_is_on_the_clean_image(mask_prob):
    # identity "AE" on all-ones images: the loss is exactly the fraction of pixels the boxes blanked
    module = AutoencoderModule(
        Identity(), optimizer=torch.optim.Adam, mask_prob=mask_prob, min_box=2, max_box=2
    )
    module.log = lambda *args, **kwargs: None
    x = torch.ones(4, 1, 8, 8)
    loss = module.training_step((x, torch.zeros(4)), 0)
    assert loss.item() == pytest.approx(0.0 if mask_prob == 0 else 4 / 64)
    loss.backward()
    assert module.net.scale.grad is not None


def test_load_autoencoder_round_trip(tmp_path):
    ae = ConvAutoencoder(1, 8, width=4)
    artifact = Artifact("autoencoder", "abc", tmp_path)
    artifact.commit(
        {"state_dict": ae.state_dict(), "hparams": ae.hparams}, {"autoencoder": {}}, {"test/loss": 0.1}
    )
    loaded = load_autoencoder(artifact.path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded(x), ae(x).detach())
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_load_autoencoder_says_how_to_create_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no finished autoencoder artifact.*autoencoder=conv_ae"):
        load_autoencoder(tmp_path / "autoencoder-missing")
    with pytest.raises(FileNotFoundError, match="unfinished"):
        load_autoencoder(tmp_path / "autoencoder-x.partial")
