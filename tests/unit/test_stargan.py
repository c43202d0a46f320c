"""StarGAN generator/critic shapes and the GanmexModule's frozen-classifier guarantee."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganmex.models.classifiers import cifar_cnn
from ganmex.models.stargan import Critic, Generator, critic_depth, from_gan, to_gan
from ganmex.training.ganmex import GanmexModule


@pytest.mark.parametrize(("size", "channels", "depth"), [(28, 1, 3), (32, 3, 3), (64, 3, 4)])
def test_generator_and_critic_shapes(size, channels, depth):
    torch.manual_seed(0)
    gen = Generator(channels, num_classes=5, image_size=size, conv_dim=4, n_res=1)
    critic = Critic(channels, num_classes=5, image_size=size, conv_dim=4)
    x = torch.rand(2, channels, size, size) * 2 - 1
    out = gen(x, torch.tensor([0, 4]))
    assert out.shape == x.shape
    assert out.abs().max() <= 1.0  # tanh output
    assert critic_depth(size) == depth
    assert critic(x).shape == (2,)
    assert critic.out_size >= 3


def test_critic_class_head_gives_logits_per_class():
    critic = Critic(1, num_classes=10, image_size=28, conv_dim=4, class_head=True)
    score, logits = critic.forward_with_classes(torch.rand(3, 1, 28, 28))
    assert score.shape == (3,) and logits.shape == (3, 10)
    with pytest.raises(RuntimeError, match="class_head=true"):
        Critic(1, 10, 28, conv_dim=4).forward_with_classes(torch.rand(1, 1, 28, 28))


def test_generator_target_changes_output():
    torch.manual_seed(0)
    gen = Generator(1, num_classes=10, image_size=28, conv_dim=4, n_res=1)
    x = torch.rand(1, 1, 28, 28)
    assert not torch.allclose(gen(x, torch.tensor([1])), gen(x, torch.tensor([7])))


@pytest.mark.parametrize("size", [30, 27])
def test_generator_rejects_side_not_divisible_by_4(size):
    with pytest.raises(ValueError, match=f"image_size={size}.*divisible by 4"):
        Generator(1, 10, size)


def test_pixel_space_round_trip():
    x = torch.rand(4, 1, 8, 8)
    assert to_gan(x).min() >= -1 and to_gan(x).max() <= 1
    assert torch.allclose(from_gan(to_gan(x)), x)


def _adam(lr: float):
    return lambda params: torch.optim.Adam(params, lr=lr)


def test_training_step_leaves_batchnorm_classifier_bit_identical():
    """Lightning calls .train() on the module; f (with BatchNorm) must keep weights and running stats."""
    torch.manual_seed(0)
    f = cifar_cnn(3, 4, 16, mean=[0.5] * 3, std=[0.25] * 3, widths=(4, 8), hidden=8)
    f.eval()
    before = {k: v.clone() for k, v in f.state_dict().items()}
    assert any("running_mean" in k for k in before)
    gen = Generator(3, 4, 16, conv_dim=4, n_res=1)
    gen_before = [p.clone() for p in gen.parameters()]
    module = GanmexModule(
        gen,
        Critic(3, 4, 16, conv_dim=4),
        f,
        4,
        _adam(1e-3),
        _adam(1e-3),
        lambda_cls=1.0,
        lambda_sim=1.0,
        n_critic=1,
    )
    data = TensorDataset(torch.rand(16, 3, 16, 16), torch.arange(16) % 4)
    trainer = L.Trainer(
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    trainer.fit(module, DataLoader(data, batch_size=8))
    assert trainer.global_step == 4  # 2 batches x (critic + generator step)
    assert not f.training
    for key, value in f.state_dict().items():
        assert torch.equal(value, before[key]), f"classifier {key} changed during GAN training"
    assert all(p.grad is None for p in f.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(gen_before, gen.parameters(), strict=True))
    assert "classifier" not in " ".join(module.state_dict())  # f is not saved with the GAN


def test_n_critic_and_ema_validation():
    f = cifar_cnn(1, 2, 8, mean=[0.5], std=[0.25], widths=(2,), hidden=4)
    parts = (Generator(1, 2, 8, 2, 0), Critic(1, 2, 8, 2), f, 2, _adam(1e-3), _adam(1e-3))
    with pytest.raises(ValueError, match="n_critic=0"):
        GanmexModule(*parts, n_critic=0)
    with pytest.raises(ValueError, match="ema_decay=1.5"):
        GanmexModule(*parts, ema_decay=1.5)
    module = GanmexModule(*parts, ema_decay=0.9)
    assert module.sampler is module.generator_ema
