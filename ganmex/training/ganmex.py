"""GanmexModule: StarGAN trained against the frozen classifier f (Shih et al., GANMEX, 2020).

Generator loss = adversarial + lambda_cls CE(f(G(x, t)), t) + lambda_sim |G(x, t) - x|
               + lambda_rec |G(G(x, t), c) - x|  + lambda_id |G(x, c) - x| (Fixed-Point GAN identity,
               on the pairs whose drawn target is the source class)
               + lambda_mask mean(A) + lambda_tv TV(A)   (only for gan.generator.output=mask);
f sees G(x, t) shifted by up to `cls_shift` pixels (0 = unshifted), so edits must survive small shifts;
the critic is trained with WGAN-GP. `target_source=false` draws targets t != c only (the identity
pairs then come from `lambda_id` alone, one G(x, c) pass on the whole batch).

f takes the place of StarGAN's class head, so it must be the *same* function throughout: it is
kept outside this module's children (in a plain list), so Lightning's `.train()`, `.to()` hooks,
optimisers and checkpoints never touch it; it stays in eval mode with `requires_grad=False`, and
gradients only flow *through* it to the generator. L1 terms are in GAN space ([-1, 1]) as in
StarGAN/GANMEX, so the reference lambda values carry over; logged proximity is in [0, 1] pixels.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganmex.data.info import DatasetInfo
from ganmex.metrics.counterfactual import counterfactual_quality
from ganmex.models.stargan import Critic, Generator, from_gan, to_gan
from ganmex.training.gan_losses import (
    critic_wasserstein_loss,
    generator_adversarial_loss,
    gradient_penalty,
    mask_sparsity_loss,
    random_translate,
    same_class_partners,
    total_variation_loss,
)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
log = logging.getLogger(__name__)
# what validation logs as val/<name> (ganmex.metrics.counterfactual names them for every stage)
VALIDATED = ("validity", "proximity_l1")


class GanmexModule(L.LightningModule):
    """Manual optimisation: one critic step per batch, one generator step every `n_critic` batches."""

    def __init__(
        self,
        generator: Generator,
        critic: Critic,
        classifier: nn.Module,
        num_classes: int,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        lambda_cls: float = 1.0,
        lambda_rec: float = 10.0,
        lambda_sim: float = 0.0,
        lambda_gp: float = 10.0,
        n_critic: int = 5,
        lambda_id: float = 0.0,
        lambda_mask: float = 0.0,
        lambda_tv: float = 0.0,
        target_source: bool = True,
        ema_decay: float | None = None,
        cls_shift: int = 0,
        lr_decay_from: float | None = None,
        cls_dropout: bool = False,
        cls_dropout_worst_of: int = 1,
        gp_every: int = 1,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"gan.n_critic={n_critic} must be >= 1 (critic steps per generator step)")
        weights = {
            "lambda_id": lambda_id,
            "lambda_mask": lambda_mask,
            "lambda_tv": lambda_tv,
        }
        for key, value in weights.items():
            if value < 0:
                raise ValueError(f"gan.loss.{key}={value} must be >= 0 (0 switches the term off)")
        if (lambda_mask or lambda_tv) and getattr(generator, "output", "direct") != "mask":
            raise ValueError(
                f"gan.loss.lambda_mask / lambda_tv need gan.generator.output=mask "
                f"(got output={getattr(generator, 'output', 'direct')!r}); set them to 0 or use the mask mode"
            )
        if cls_shift < 0:
            raise ValueError(f"gan.loss.cls_shift={cls_shift} must be >= 0 pixels (0 = no shift)")
        if not target_source and num_classes < 2:
            raise ValueError("gan.loss.target_source=false needs at least 2 classes")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"gan.ema_decay={ema_decay} must be in (0, 1) or null to switch EMA off")
        if lr_decay_from is not None and not 0.0 <= lr_decay_from < 1.0:
            raise ValueError(
                f"gan.lr_decay_from={lr_decay_from} must be in [0, 1) (the share of the budget at constant "
                f"learning rate) or null for a constant learning rate"
            )
        if cls_dropout_worst_of < 1:
            raise ValueError(
                f"gan.loss.cls_dropout_worst_of={cls_dropout_worst_of} must be >= 1 (dropout samples of f "
                f"per image; 1 = one sample)"
            )
        if gp_every < 1:
            raise ValueError(
                f"gan.loss.gp_every={gp_every} must be >= 1 (critic steps per gradient penalty; "
                f"1 = every step)"
            )
        has_dropout = bool(dropout_layers(classifier))
        if cls_dropout and not has_dropout:
            log.warning(
                "gan.loss.cls_dropout=true is off: %s has no dropout module to sample (TorchScript and "
                "exported graphs fix dropout when saved; functional dropout is not a module), so the class "
                "loss sees f as it is; set gan.loss.cls_dropout=false to silence this",
                type(getattr(classifier, "net", classifier)).__name__,
            )
        self.cls_dropout = cls_dropout
        # without sampled dropout every draw of f is the same: one draw
        self.cls_dropout_worst_of = cls_dropout_worst_of if cls_dropout and has_dropout else 1
        self.automatic_optimization = False
        self.generator = generator
        self.critic = critic
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay else None
        classifier.eval().requires_grad_(False)
        self._frozen: list[nn.Module] = [classifier]  # a list: invisible to .children(), .train(), state_dict
        self.num_classes = num_classes
        self.g_optimizer_factory = g_optimizer
        self.d_optimizer_factory = d_optimizer
        self.lambda_cls, self.lambda_rec, self.lambda_sim, self.lambda_gp = (
            lambda_cls,
            lambda_rec,
            lambda_sim,
            lambda_gp,
        )
        self.lambda_id, self.lambda_mask, self.lambda_tv = lambda_id, lambda_mask, lambda_tv
        self.target_source = target_source
        self.cls_shift = cls_shift
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.lr_decay_from = lr_decay_from
        self.gp_every = gp_every
        self.channels_last = channels_last
        self._log_this_batch = True

    # -- the frozen classifier ----------------------------------------------------------------
    @property
    def classifier(self) -> nn.Module:
        """f on this module's device, always in eval mode."""
        net = self._frozen[0]
        param = next(net.parameters(), None)
        if param is not None and param.device != self.device:
            net.to(self.device)
        if net.training:
            net.eval()
        return net

    def classify(self, images01: torch.Tensor) -> torch.Tensor:
        return self.classifier(images01)

    # -- sampling -----------------------------------------------------------------------------
    @property
    def sampler(self) -> Generator:
        """The generator used for counterfactuals: the EMA copy when enabled."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def counterfactuals(self, images01: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """G(x, t) in [0, 1] pixel space."""
        return from_gan(self.sampler(to_gan(images01), target)).clamp(0, 1)

    # -- training -----------------------------------------------------------------------------
    def _class_loss(self, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """CE of the class discriminator at t: f (under sampled dropout with `cls_dropout`), or the
        critic's own head. With `cls_dropout_worst_of` = K > 1, each image pays the largest CE of K
        dropout draws of f: G(x, t) must convince most members of f's implicit ensemble, not their mean."""
        if self.critic.has_class_head:
            _, logits = self.critic.forward_with_classes(fake, target)
            return F.cross_entropy(logits, target)
        images = random_translate(from_gan(fake), self.cls_shift)
        draws = self.cls_dropout_worst_of
        with dropout_sampled(self.classifier, self.cls_dropout):
            if draws == 1:
                return F.cross_entropy(self.classify(images), target)
            # one pass of K copies: every copy draws its own dropout masks, at one batch's overhead
            logits = self.classify(images.repeat(draws, 1, 1, 1))
        losses = F.cross_entropy(logits, target.repeat(draws), reduction="none")
        return losses.view(draws, -1).amax(0).mean()

    def _critic_step(
        self,
        real: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        fake: torch.Tensor,
        with_penalty: bool = True,
    ) -> None:
        """WGAN-GP critic update on `fake` = G(x, t) (detached here: the critic does not train G).

        A conditional critic scores real images as their class and fakes as their target class.
        `with_penalty` false skips the gradient penalty (lazy regularisation, `gp_every`): the penalty
        steps weigh it `gp_every` times, so its mean weight over the run stays lambda_gp."""
        d_opt = self.optimizers()[1]
        fake = fake.detach()
        if self.critic.has_class_head:
            real_scores, real_logits = self.critic.forward_with_classes(real, source)
            cls = F.cross_entropy(real_logits, source)
        else:
            real_scores, cls = self.critic(real, source), real.new_zeros(())
        fake_scores = self.critic(fake, target)
        if not with_penalty:
            gp = real.new_zeros(())
        elif self.critic.conditional:  # interpolate each fake with a real image of its target class
            partners = real[same_class_partners(source, target)]
            gp = gradient_penalty(lambda mixed: self.critic(mixed, target), partners, fake)
        else:
            gp = gradient_penalty(self.critic, real, fake)
        wasserstein = critic_wasserstein_loss(real_scores, fake_scores)
        loss = wasserstein + self.lambda_gp * self.gp_every * gp + self.lambda_cls * cls
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        d_opt.step()
        logged = {"train/d_loss": loss, "train/d_wasserstein": -wasserstein}
        if with_penalty:  # a skipped penalty is not a zero one
            logged["train/d_gp"] = gp
        if self._log_this_batch:
            self.log_dict(logged, on_step=True, on_epoch=False, prog_bar=False)

    def _generator_step(
        self,
        real: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        fake: torch.Tensor,
        attention: torch.Tensor | None,
    ) -> None:
        """Generator update on `fake` = G(x, t) and its attention, computed with their graph."""
        g_opt = self.optimizers()[0]
        adv = generator_adversarial_loss(self.critic(fake, target))
        cls = self._class_loss(fake, target)
        sim = (fake - real).abs().mean()
        zero = real.new_zeros(())
        # terms with weight 0 are not computed: each costs a generator pass on CPU
        rec = (self.generator(fake, source) - real).abs().mean() if self.lambda_rec else zero
        ident = self._identity_loss(real, source, target, fake) if self.lambda_id else zero
        sparsity = mask_sparsity_loss(attention) if attention is not None else zero
        tv = total_variation_loss(attention) if attention is not None else zero
        loss = (
            adv
            + self.lambda_cls * cls
            + self.lambda_sim * sim
            + self.lambda_rec * rec
            + self.lambda_id * ident
            + self.lambda_mask * sparsity
            + self.lambda_tv * tv
        )
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        g_opt.step()
        if self.generator_ema is not None:
            with torch.no_grad():
                for ema, live in zip(
                    self.generator_ema.parameters(), self.generator.parameters(), strict=True
                ):
                    ema.lerp_(live, 1.0 - self.ema_decay)
        if not self._log_this_batch:
            return
        self.log_dict(
            {
                "train/g_loss": loss,
                "train/g_adv": adv,
                "train/g_cls": cls,
                "train/g_sim": sim,
                "train/g_rec": rec,
                "train/g_id": ident,
                "train/g_mask": sparsity,
                "train/g_tv": tv,
            },
            on_step=True,
            on_epoch=False,
            prog_bar=False,
        )
        self.log("train/g_cls_loss", cls, on_step=True, on_epoch=False, prog_bar=True)

    def _identity_loss(
        self, real: torch.Tensor, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """Fixed-Point GAN: |G(x, c) - x|; reuses G(x, t) where t = c was drawn, else one more G pass."""
        if self.target_source:
            same = target == source
            return (fake[same] - real[same]).abs().mean() if same.any() else real.new_zeros(())
        return (self.generator(real, source) - real).abs().mean()

    def draw_targets(self, source: torch.Tensor) -> torch.Tensor:
        """Uniform over all classes (`target_source`), else uniform over the classes other than the source."""
        if self.target_source:
            return torch.randint(0, self.num_classes, source.shape, device=source.device)
        shift = torch.randint(1, self.num_classes, source.shape, device=source.device)
        return (source + shift) % self.num_classes

    def on_fit_start(self) -> None:
        if self.channels_last:  # NHWC convolutions: faster on some CPUs (docs/benchmarks.md)
            for net in (self.generator, self.critic, self.classifier):
                net.to(memory_format=torch.channels_last)

    def training_step(self, batch, batch_idx: int) -> None:
        """One critic step and, every `n_critic` batches, one generator step on the same G(x, t).

        G does not change during the critic step, so the critic's G(x, t) is exactly the generator
        step's: on generator batches it is computed once, with its graph (a sixth of a step's cost)."""
        images, source = batch
        # Lightning's log calls cost ~1 ms each on a CPU: record the losses on the batches the
        # loggers write (every trainer.log_every_n_steps), not on every batch; every batch without a Trainer
        trainer = self._trainer
        log_every = max(1, trainer.log_every_n_steps) if trainer is not None else 1
        self._log_this_batch = (batch_idx + 1) % log_every == 0
        real = to_gan(images)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        target = self.draw_targets(source)
        generator_batch = (batch_idx + 1) % self.n_critic == 0
        graph = (
            torch.enable_grad() if generator_batch else torch.no_grad()
        )  # only the generator step needs it
        with graph:
            fake, attention = self.generator.forward_with_mask(real, target)
        self._critic_step(real, source, target, fake, with_penalty=batch_idx % self.gp_every == 0)
        if generator_batch:
            self._generator_step(real, source, target, fake, attention)
        if self.lr_decay_from is not None:
            for scheduler in self.lr_schedulers():
                scheduler.step()

    # -- validation: validity and proximity over every (x, t != c) pair of the fixed val batch --
    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        scored = []
        for t in range(self.num_classes):
            keep = labels != t
            if not keep.any():
                continue
            x = images[keep]
            target = torch.full((len(x),), t, device=x.device, dtype=torch.long)
            scored.append(counterfactual_quality(self.classify, x, self.counterfactuals(x, target), target))
        for name in VALIDATED:
            values = torch.cat([pairs[name] for pairs in scored])
            self.log(
                f"val/{name}",
                values.mean(),
                on_epoch=True,
                prog_bar=True,
                batch_size=len(values),
                sync_dist=True,
            )

    def configure_optimizers(self):
        g_opt = self.g_optimizer_factory(params=self.generator.parameters())
        d_opt = self.d_optimizer_factory(params=self.critic.parameters())
        if self.lr_decay_from is None:
            return [g_opt, d_opt]
        factor = linear_decay(self.lr_decay_from, self._total_batches())
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (g_opt, d_opt)]
        return [g_opt, d_opt], schedulers

    def _total_batches(self) -> int:
        """Training batches in the budget: Lightning counts each optimizer step (a critic step per batch,
        a generator step every n_critic batches) against max_steps."""
        max_steps = self.trainer.max_steps
        if max_steps is None or max_steps <= 0:
            raise ValueError(
                f"gan.lr_decay_from needs a step budget: set gan.trainer.max_steps (got {max_steps}) "
                f"or gan.lr_decay_from=null"
            )
        return max(1, round(max_steps * self.n_critic / (self.n_critic + 1)))


def dropout_layers(net: nn.Module) -> list[nn.Module]:
    """`net`'s dropout layers (any dimensionality): the units `cls_dropout` samples."""
    return [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


@contextmanager
def dropout_sampled(net: nn.Module, active: bool) -> Iterator[None]:
    """Inside the block `net`'s dropout layers (only those) sample masks, as in training; the weights
    stay frozen. A class loss under sampled dropout is judged by a random member of f's implicit
    ensemble each step, so G(x, t) must convince most of them: edits that exploit one exact set of
    f's units (adversarial) stop paying, in the spirit of Schut et al. 2021 (counterfactuals that
    minimise the classifier's epistemic uncertainty are realistic)."""
    layers = dropout_layers(net) if active else []
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer in layers:
            layer.eval()


def linear_decay(start: float, total: int) -> Callable[[int], float]:
    """Learning-rate factor per batch: 1 for the first `start` share of `total` batches, then linearly
    to 0 at the last (StarGAN decays over the second half): the final generator is not one noisy
    snapshot of an oscillating GAN but where the oscillation settles."""
    begin = start * total

    def factor(batch: int) -> float:
        if batch < begin:
            return 1.0
        return max(0.0, (total - batch) / (total - begin))

    return factor


def ganmex_module_from_config(gan: DictConfig, info: DatasetInfo, classifier: nn.Module) -> GanmexModule:
    """Generator, critic and losses from a `gan` config (conf/gan/*.yaml), sized for the dataset, against
    the frozen classifier: the one builder of the gan stage and the throughput benchmark."""
    shape = {"channels": info.channels, "num_classes": info.num_classes, "image_size": info.image_size}
    return GanmexModule(
        generator=instantiate(gan.generator, **shape),
        critic=instantiate(gan.critic, **shape),
        classifier=classifier,
        num_classes=info.num_classes,
        g_optimizer=instantiate(gan.g_optimizer),
        d_optimizer=instantiate(gan.d_optimizer),
        **OmegaConf.to_container(gan.loss, resolve=True),
        ema_decay=gan.get("ema_decay"),
        lr_decay_from=gan.get("lr_decay_from"),
        channels_last=gan.get("channels_last", False),
    )
