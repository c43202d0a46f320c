"""WGAN-GP losses (Gulrajani et al. 2017) in the form StarGAN uses them, and GANimation's mask losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean over the batch of (||d critic(x_hat) / d x_hat||_2 - 1)^2, x_hat = alpha real + (1-alpha) fake.

    `alpha` (one per example, uniform in [0, 1) when omitted) is exposed so tests can fix it.
    The graph is kept (create_graph) so the penalty trains the critic.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_wasserstein_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic minimises E[D(fake)] - E[D(real)]."""
    return fake_scores.mean() - real_scores.mean()


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator minimises -E[D(fake)]."""
    return -fake_scores.mean()


def mask_sparsity_loss(attention: torch.Tensor) -> torch.Tensor:
    """mean A: GANimation's L1 on the attention mask, so G edits few pixels and copies the rest from x."""
    return attention.abs().mean()


def total_variation_loss(attention: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of vertically and horizontally adjacent mask values (smooth, blob masks).

    Anisotropic L1 TV: the mean over |A[i+1, j] - A[i, j]| plus the mean over |A[i, j+1] - A[i, j]|.
    """
    if attention.dim() != 4:
        raise ValueError(f"attention must be N x C x H x W, got shape {tuple(attention.shape)}")
    vertical = (attention[:, :, 1:, :] - attention[:, :, :-1, :]).abs().mean()
    horizontal = (attention[:, :, :, 1:] - attention[:, :, :, :-1]).abs().mean()
    return vertical + horizontal


def random_translate(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """`images` moved by one random offset in [-max_shift, max_shift] pixels per axis (edge pixels repeat).

    The class loss sees G's output at a random small shift (expectation over transformations): an
    edit that flips f only at one exact pixel alignment is an adversarial pattern, a drawn stroke is not.
    """
    if max_shift < 0:
        raise ValueError(f"gan.loss.cls_shift={max_shift} must be >= 0 pixels (0 = no shift)")
    if max_shift == 0:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,)).tolist()
    return padded[..., dy : dy + height, dx : dx + width]


def same_class_partners(labels: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """For each entry of `wanted`, the index of a random item of `labels` with that class.

    A conditional critic's gradient penalty interpolates G(x, t) with a real image of class t, so the
    mixed image has one class to be scored as. A class absent from `labels` gets a random index.
    """
    scores = torch.rand(len(wanted), len(labels), device=labels.device)
    scores = scores + (wanted.view(-1, 1) == labels.view(1, -1)).to(scores.dtype)  # matches score > 1
    return scores.argmax(dim=1)
