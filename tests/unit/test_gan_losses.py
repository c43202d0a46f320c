"""WGAN-GP pieces against hand computations on tiny critics."""

from __future__ import annotations

import pytest
import torch

from ganmex.training.gan_losses import (
    critic_wasserstein_loss,
    generator_adversarial_loss,
    gradient_penalty,
    random_translate,
    same_class_partners,
)


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.b = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.w.flatten()).sum(1) + self.b


def test_gradient_penalty_linear_critic_matches_closed_form_and_trains_the_critic():
    w = torch.tensor([[[[3.0, 0.0], [0.0, 4.0]]]])  # ||w|| = 5
    critic = LinearCritic(w)
    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(critic.w.grad, 2 * 4.0 * w / 5.0)


def test_gradient_penalty_quadratic_critic_by_hand():
    # D(x) = sum(x^2) -> grad at x_hat = 2 x_hat; with alpha fixed the penalty is computable by hand
    real = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    fake = torch.tensor([[0.0, 0.0], [0.0, 2.0]]).view(2, 1, 1, 2)
    alpha = torch.tensor([0.25, 0.5])

    def critic(x):
        return (x**2).flatten(1).sum(1)

    # x_hat_0 = (0.25, 0), grad norm 0.5 -> (0.5-1)^2 = 0.25 ; x_hat_1 = (0, 1), grad norm 2 -> 1
    gp = gradient_penalty(critic, real, fake, alpha=alpha)
    assert gp.item() == pytest.approx((0.25 + 1.0) / 2)


def test_gradient_penalty_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(lambda x: x.sum((1, 2, 3)), torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4))


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_wasserstein_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert generator_adversarial_loss(fake).item() == pytest.approx(0.5)


def test_mask_sparsity_and_total_variation_by_hand():
    from ganmex.training.gan_losses import mask_sparsity_loss, total_variation_loss

    a = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])  # 1 x 1 x 2 x 2
    assert mask_sparsity_loss(a).item() == pytest.approx(0.5)
    # vertical |0.5-0| and |0.5-1| -> mean 0.5; horizontal |1-0| and |0.5-0.5| -> mean 0.5
    assert total_variation_loss(a).item() == pytest.approx(1.0)
    assert total_variation_loss(torch.full((2, 1, 3, 3), 0.7)).item() == 0.0
    with pytest.raises(ValueError, match="N x C x H x W"):
        total_variation_loss(torch.zeros(3, 3))


def test_random_translate_moves_the_image_by_one_offset_and_repeats_edges():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    assert random_translate(x, 0) is x
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        moved = random_translate(x, 1)
        assert moved.shape == x.shape
        assert torch.equal(moved[0], moved[1])  # one offset for the whole batch
        # every output pixel is the input at (row - dy, col - dx), clamped to the border
        offsets = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(
                moved[0, 0],
                x[0, 0][(torch.arange(4) - dy).clamp(0, 3)][:, (torch.arange(4) - dx).clamp(0, 3)],
            )
        ]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert len(seen) == 9  # all nine offsets in [-1, 1]^2 occur
    with pytest.raises(ValueError, match="gan.loss.cls_shift=-1 must be >= 0"):
        random_translate(x, -1)


def test_same_class_partners_pick_an_item_of_the_wanted_class():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    wanted = torch.tensor([2, 1, 0, 0, 2, 1, 5])  # 5 is absent: any index
    for _ in range(20):
        partners = same_class_partners(labels, wanted)
        assert partners.shape == (7,)
        assert torch.equal(labels[partners[:6]], wanted[:6])
        assert 0 <= partners[6] < 6
    # both items of a class are drawn (a random partner, not always the first)
    draws = {same_class_partners(labels, torch.tensor([1])).item() for _ in range(50)}
    assert draws == {2, 3}
