"""StarGAN generator/critic shapes and the GanmexModule's frozen-classifier guarantee."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganmex.models.classifiers import cifar_cnn
from ganmex.models.stargan import Critic, Generator, critic_depth, from_gan, to_gan
from ganmex.tensors import keep_colour
from ganmex.training.gan_losses import gradient_penalty, total_variation_loss
from ganmex.training.ganmex import GanmexModule, dropout_sampled, linear_decay


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


def test_conditional_critic_scores_each_image_as_its_label():
    torch.manual_seed(0)
    critic = Critic(1, num_classes=4, image_size=8, conv_dim=2, conditional=True)
    x = torch.rand(3, 1, 8, 8)
    per_class = critic.score(critic.main(x)).mean(dim=(2, 3))  # (3, 4): one realism score per class
    labels = torch.tensor([3, 0, 2])
    torch.testing.assert_close(critic(x, labels), per_class[torch.arange(3), labels])
    with pytest.raises(ValueError, match="conditional=true.*labels"):
        critic(x)
    plain = Critic(1, num_classes=4, image_size=8, conv_dim=2)
    torch.testing.assert_close(plain(x, labels), plain(x))  # an unconditional critic ignores labels


def test_conditional_critic_step_scores_fakes_as_their_targets():
    """The critic sees real images with their class and G(x, t) with t, and the penalty mixes each
    fake with a real image of class t: a training step calls the critic only with those labels."""
    module = _module("mask", lambda_cls=1.0, lambda_sim=1.0, lambda_mask=1.0, lambda_tv=1.0)
    module.critic = Critic(1, 3, 8, 2, conditional=True)
    seen: list[torch.Tensor] = []
    module.critic.register_forward_pre_hook(lambda _, args: seen.append(args[1].clone()))
    images, labels = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    _step_outside_a_trainer(module, lambda params: torch.optim.SGD(params, lr=0.1), (images, labels), seed=3)
    torch.manual_seed(3)
    target = module.draw_targets(labels)
    # critic(real, c), critic(fake, t), the penalty's critic(mixed, t), the generator's critic(fake, t)
    assert [s.tolist() for s in seen] == [labels.tolist()] + [target.tolist()] * 3


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


def _quiet_trainer(max_steps: int) -> L.Trainer:
    """A CPU Trainer without logging, checkpoints, bars or validation: just the optimisation steps."""
    return L.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )


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
    trainer = _quiet_trainer(max_steps=4)
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


def _last_conv_output_set(gen: Generator, channel: int, value: float):
    """Forward hook: the generator's last conv writes `value` into one output channel."""

    def hook(_module, _inputs, output):
        output = output.clone()
        output[:, channel] = value
        return output

    return gen.main[-1].register_forward_hook(hook)


@pytest.mark.parametrize("output", ["direct", "residual", "mask"])
def test_every_output_mode_gives_image_shaped_output_in_gan_range(output):
    torch.manual_seed(0)
    gen = Generator(3, num_classes=4, image_size=16, conv_dim=4, n_res=1, output=output)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out, attention = gen.forward_with_mask(x, torch.tensor([0, 3]))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, gen(x, torch.tensor([0, 3])))
    if output == "mask":
        assert attention.shape == (2, 1, 16, 16) and attention.min() >= 0 and attention.max() <= 1
    else:
        assert attention is None


def test_mask_mode_with_zero_attention_returns_x_exactly_and_full_attention_returns_content():
    torch.manual_seed(0)
    gen = Generator(1, num_classes=3, image_size=8, conv_dim=4, n_res=1, output="mask")
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    target = torch.tensor([0, 1, 2])
    handle = _last_conv_output_set(gen, 1, -1e4)  # attention logit -> sigmoid = 0
    out, attention = gen.forward_with_mask(x, target)
    handle.remove()
    assert torch.equal(attention, torch.zeros_like(attention))
    assert torch.equal(out, x)
    handle = _last_conv_output_set(gen, 1, 1e4)  # A = 1: x' is the content tanh(h_C) alone
    content = torch.tanh(
        gen.main(torch.cat([x, torch.eye(3)[target][:, :, None, None].expand(-1, -1, 8, 8)], 1))
    )
    out, _ = gen.forward_with_mask(x, target)
    handle.remove()
    torch.testing.assert_close(out, content[:, :1])
    assert not torch.allclose(out, x)


def test_residual_mode_adds_the_change_and_clamps_to_the_gan_range():
    gen = Generator(1, num_classes=2, image_size=8, conv_dim=4, n_res=0, output="residual")
    x = torch.full((1, 1, 8, 8), 0.5)
    handle = _last_conv_output_set(gen, 0, 1e4)  # 2 tanh(h) = +2: 0.5 + 2 clamps to 1
    assert torch.equal(gen(x, torch.tensor([1])), torch.ones_like(x))
    handle.remove()
    handle = _last_conv_output_set(gen, 0, 0.0)  # no change: x itself
    assert torch.equal(gen(x, torch.tensor([1])), x)
    handle.remove()
    handle = _last_conv_output_set(gen, 0, -0.1)
    torch.testing.assert_close(gen(x, torch.tensor([1])), x + 2 * torch.tanh(torch.tensor(-0.1)))
    handle.remove()


def test_unknown_output_mode_is_refused():
    with pytest.raises(ValueError, match="gan.generator.output='blend' is not one of direct, residual, mask"):
        Generator(1, 2, 8, 4, 0, output="blend")


def _outside_a_trainer(module: GanmexModule, optimizer) -> None:
    """Let the module's steps run without a Trainer: its own optimisers, plain backward, no logging."""
    optimizers = (optimizer(module.generator.parameters()), optimizer(module.critic.parameters()))
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda value: value.backward()
    module.log = module.log_dict = lambda *args, **kwargs: None


def _step_outside_a_trainer(module: GanmexModule, optimizer, batch, seed: int) -> None:
    """One training_step without a Trainer (`_outside_a_trainer`)."""
    _outside_a_trainer(module, optimizer)
    torch.manual_seed(seed)
    module.training_step(batch, 0)


def _module(output: str = "direct", optimizer=None, **loss) -> GanmexModule:
    f = cifar_cnn(1, 3, 8, mean=[0.5], std=[0.25], widths=(2,), hidden=4)
    gen = Generator(1, 3, 8, 4, 0, output=output)
    opt = optimizer or _adam(1e-3)
    return GanmexModule(gen, Critic(1, 3, 8, 2), f, 3, opt, opt, n_critic=1, **loss)


def test_identity_loss_uses_only_pairs_whose_target_is_the_source():
    module = _module(lambda_id=1.0)
    real = torch.zeros(3, 1, 8, 8)
    fake = torch.stack([torch.full((1, 8, 8), v) for v in (0.2, 0.5, 0.9)])
    source, target = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2])  # pairs 0 and 2 are t = c
    ident = module._identity_loss(real, source, target, fake)
    assert ident.item() == pytest.approx((0.2 + 0.9) / 2)
    none_same = module._identity_loss(real, source, torch.tensor([1, 2, 0]), fake)
    assert none_same.item() == 0.0


def test_identity_loss_with_targets_other_than_the_source_runs_g_on_the_source_class():
    module = _module(lambda_id=1.0, target_source=False)
    torch.manual_seed(0)
    real = torch.rand(3, 1, 8, 8) * 2 - 1
    source = torch.tensor([0, 1, 2])
    expected = (module.generator(real, source) - real).abs().mean()
    ident = module._identity_loss(real, source, torch.tensor([1, 2, 0]), torch.zeros_like(real))
    torch.testing.assert_close(ident, expected)
    drawn = module.draw_targets(torch.arange(3).repeat(200))
    assert (drawn != torch.arange(3).repeat(200)).all() and set(drawn.tolist()) == {0, 1, 2}


def test_identity_switch_changes_the_generator_update():
    """The same step with lambda_id on and off moves G differently (the term reaches the gradient).

    Plain SGD: Adam's first step is lr * sign(gradient), which an extra term rarely flips."""
    results = []
    for lambda_id in (0.0, 10.0):
        torch.manual_seed(0)
        sgd = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
        module = _module(optimizer=sgd, lambda_id=lambda_id, target_source=False, lambda_cls=1.0)
        torch.manual_seed(1)
        data = TensorDataset(torch.rand(6, 1, 8, 8), torch.arange(6) % 3)
        trainer = _quiet_trainer(max_steps=2)
        trainer.fit(module, DataLoader(data, batch_size=6))
        results.append([p.detach().clone() for p in module.generator.parameters()])
    assert not all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_mask_losses_need_the_mask_output_and_weights_must_be_non_negative():
    with pytest.raises(ValueError, match="need gan.generator.output=mask"):
        _module("direct", lambda_mask=1.0)
    with pytest.raises(ValueError, match="gan.loss.lambda_id=-1.0 must be >= 0"):
        _module(lambda_id=-1.0)
    assert _module("mask", lambda_mask=1.0, lambda_tv=1.0).lambda_tv == 1.0


def test_one_shared_g_pass_matches_a_critic_step_then_a_fresh_generator_step():
    """training_step computes G(x, t) once for both updates; the textbook order (critic on a no-grad
    G(x, t), then the generator on a fresh G(x, t)) must give the same weights."""
    sgd = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
    loss = dict(
        lambda_cls=2.0, lambda_sim=3.0, lambda_rec=0.0, lambda_mask=0.5, lambda_tv=0.5, lambda_gp=10.0
    )
    torch.manual_seed(0)
    module = _module("mask", optimizer=sgd, **loss)
    reference = _module("mask", optimizer=sgd, **loss)
    reference.load_state_dict(module.state_dict())
    reference._frozen[0].load_state_dict(module._frozen[0].state_dict())
    images, labels = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    _step_outside_a_trainer(module, sgd, (images, labels), seed=1)

    torch.manual_seed(1)
    g_opt, d_opt = sgd(reference.generator.parameters()), sgd(reference.critic.parameters())
    real, target = to_gan(images), reference.draw_targets(labels)
    with torch.no_grad():
        fake = reference.generator(real, target)
    d_loss = reference.critic(fake).mean() - reference.critic(real).mean()
    d_loss = d_loss + 10.0 * gradient_penalty(reference.critic, real, fake)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    fake, attention = reference.generator.forward_with_mask(real, target)
    f = reference._frozen[0]
    g_loss = (
        -reference.critic(fake).mean()
        + 2.0 * torch.nn.functional.cross_entropy(f(from_gan(fake)), target)
        + 3.0 * (fake - real).abs().mean()
        + 0.5 * attention.abs().mean()
        + 0.5 * total_variation_loss(attention)
    )
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    for ours, theirs in zip(module.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_linear_decay_holds_then_falls_to_zero_at_the_last_batch():
    factor = linear_decay(0.5, total=10)
    assert [factor(b) for b in range(11)] == [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    assert linear_decay(0.0, total=4)(1) == pytest.approx(0.75)


def test_lr_decay_reaches_both_optimizers_in_training():
    """8 optimizer steps = 4 batches of a critic and a generator step; decay from the half: after the
    4 batches both learning rates are lr x (4 - 4) / (4 - 2) = 0, and after 3 batches lr / 2."""
    torch.manual_seed(0)
    module = _module(optimizer=_adam(1e-3), lr_decay_from=0.5)
    data = TensorDataset(torch.rand(6, 1, 8, 8), torch.arange(6) % 3)
    seen: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            seen.extend(opt.param_groups[0]["lr"] for opt in trainer.optimizers)

    trainer = _quiet_trainer(max_steps=8)
    trainer.callbacks.append(Record())
    trainer.fit(module, DataLoader(data, batch_size=6))
    assert seen == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 0.0, 0.0])


def test_lr_decay_setting_is_checked():
    with pytest.raises(ValueError, match="gan.lr_decay_from=1.0 must be in"):
        _module(lr_decay_from=1.0)


def test_dropout_sampled_switches_only_dropout_layers_and_restores_them():
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(64)).eval()
    x = torch.ones(2, 4)
    with dropout_sampled(net, active=True):
        assert net[1].training and not net[2].training and not net.training
        sampled = net(x)
    assert not net[1].training
    torch.testing.assert_close(net(x), net(x))  # deterministic again outside the block
    assert (sampled == 0).any() and not torch.equal(sampled, net(x))  # masks were sampled inside
    with dropout_sampled(net, active=False):
        assert not net[1].training


def test_cls_dropout_without_dropout_in_f_says_it_has_no_effect(caplog):
    f = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    opt = _adam(1e-3)
    GanmexModule(Generator(1, 3, 8, 4, 0), Critic(1, 3, 8, 2), f, 3, opt, opt, cls_dropout=True)
    assert "cls_dropout=true is off: Sequential has no dropout module to sample" in caplog.text


def test_keep_colour_removes_ink_of_another_hue_by_hand():
    image = torch.zeros(1, 3, 1, 2)
    image[0, 0, 0, 0] = 1.0  # one red pixel: the image's colour is pure red
    edited = image.clone()
    edited[0, 0, 0, 0] = 0.8  # less red: kept
    edited[0, 1, 0, 1] = 0.5  # green ink: removed
    edited[0, 0, 0, 1] = 0.3  # red ink: kept
    expected = torch.zeros(1, 3, 1, 2)
    expected[0, 0, 0, 0], expected[0, 0, 0, 1] = 0.8, 0.3
    torch.testing.assert_close(keep_colour(image, edited), expected)
    # a purple image (red + blue, equal): a pure-red change keeps its purple half
    purple = torch.zeros(1, 3, 1, 1)
    purple[0, 0], purple[0, 2] = 0.5, 0.5
    change = torch.zeros(1, 3, 1, 1)
    change[0, 0] = 0.2
    torch.testing.assert_close(
        keep_colour(purple, purple + change), purple + torch.tensor([0.1, 0, 0.1]).view(1, 3, 1, 1)
    )
    grey, black = torch.rand(2, 1, 4, 4), torch.zeros(1, 3, 2, 2)
    edit = torch.rand(2, 1, 4, 4)
    assert torch.equal(keep_colour(grey, edit), edit)
    assert torch.equal(keep_colour(black, torch.ones(1, 3, 2, 2)), torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match="must be equal N x C x H x W"):
        keep_colour(grey, torch.rand(2, 3, 4, 4))


@pytest.mark.parametrize("output", ["direct", "residual", "mask"])
def test_generator_keep_palette_edits_only_in_the_input_colour(output):
    torch.manual_seed(0)
    gen = Generator(3, 4, 8, 4, 0, output=output, keep_palette=True)
    x = torch.full((2, 3, 8, 8), -1.0)
    x[:, 2, 2:6, 3:5] = 1.0  # blue strokes on black
    out = gen(x, torch.tensor([1, 3]))
    assert torch.equal(out[:, :2], x[:, :2])  # red and green untouched
    assert not torch.equal(out[:, 2], x[:, 2])  # blue edited


def test_lr_decay_resumes_where_the_checkpoint_left_it(tmp_path):
    """A run stopped after 2 of 4 batches and resumed from its checkpoint decays like one run: the
    schedulers' batch count travels in the checkpoint (the factor itself is rebuilt from the config)."""
    data = TensorDataset(torch.rand(6, 1, 8, 8), torch.arange(6) % 3)
    torch.manual_seed(0)
    first = _quiet_trainer(max_steps=4)
    first.fit(_module(optimizer=_adam(1e-3), lr_decay_from=0.5), DataLoader(data, batch_size=6))
    first.save_checkpoint(tmp_path / "half.ckpt")
    resumed = _quiet_trainer(max_steps=8)
    module = _module(optimizer=_adam(1e-3), lr_decay_from=0.5)
    resumed.fit(module, DataLoader(data, batch_size=6), ckpt_path=tmp_path / "half.ckpt")
    assert [opt.param_groups[0]["lr"] for opt in resumed.optimizers] == [0.0, 0.0]
    assert module.lr_schedulers()[0].last_epoch == 4


def test_cls_dropout_worst_of_pays_each_images_largest_ce_over_the_draws():
    """K = 3 dropout draws of f, taken in one pass over 3 copies of the batch: the loss is the mean over
    images of each image's largest CE, computed here by hand from the same pass (same RNG state)."""
    module = _module(cls_dropout=True, cls_dropout_worst_of=3)
    f = module._frozen[0]
    fake, target = torch.rand(5, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0, 1])
    torch.manual_seed(3)
    loss = module._class_loss(fake, target)
    torch.manual_seed(3)
    with dropout_sampled(f, True):
        logits = f(torch.cat([from_gan(fake)] * 3)).view(3, 5, -1)
    draws = torch.stack([torch.nn.functional.cross_entropy(d, target, reduction="none") for d in logits])
    assert not torch.equal(draws[0], draws[1])  # the draws differ: dropout was sampled
    torch.testing.assert_close(loss, draws.max(0).values.mean())
    assert loss > draws.mean()  # stricter than the draws' mean


def test_cls_dropout_worst_of_is_checked():
    with pytest.raises(ValueError, match="cls_dropout_worst_of=0 must be >= 1"):
        _module(cls_dropout=True, cls_dropout_worst_of=0)


def test_cls_dropout_worst_of_draws_once_when_dropout_is_not_sampled():
    """cls_dropout=false: f is deterministic, so K draws would be K equal ones; the loss is f's CE."""
    module = _module(cls_dropout=False, cls_dropout_worst_of=4)
    assert module.cls_dropout_worst_of == 1
    fake, target = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0])
    expected = torch.nn.functional.cross_entropy(module._frozen[0](from_gan(fake)), target)
    torch.testing.assert_close(module._class_loss(fake, target), expected)


def test_gp_every_applies_the_penalty_on_every_kth_batch_only():
    module = _module(gp_every=3)
    seen: list[bool] = []
    module._critic_step = lambda *args, with_penalty: seen.append(with_penalty)
    module._generator_step = lambda *args: None
    batch = (torch.rand(3, 1, 8, 8), torch.arange(3))
    for batch_idx in range(6):
        module.training_step(batch, batch_idx)
    assert seen == [True, False, False, True, False, False]
    with pytest.raises(ValueError, match="gan.loss.gp_every=0 must be >= 1"):
        _module(gp_every=0)


@pytest.mark.parametrize("with_penalty", [True, False])
def test_lazy_penalty_weighs_lambda_gp_times_gp_every_and_is_skipped_between(with_penalty):
    """gp_every = 4, lambda_gp = 10: a penalty step adds 40 x GP (the mean weight over 4 steps stays 10),
    a step between adds nothing; checked against the critic updated by hand."""
    sgd = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
    torch.manual_seed(0)
    module = _module(optimizer=sgd, lambda_gp=10.0, gp_every=4)
    reference = copy.deepcopy(module.critic)
    real, fake = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    labels = torch.tensor([0, 1, 2, 0])
    _outside_a_trainer(module, sgd)
    torch.manual_seed(1)
    module._critic_step(real, labels, labels, fake, with_penalty=with_penalty)

    torch.manual_seed(1)
    loss = reference(fake).mean() - reference(real).mean()
    if with_penalty:
        loss = loss + 40.0 * gradient_penalty(reference, real, fake)
    by_hand = sgd(reference.parameters())
    by_hand.zero_grad()
    loss.backward()
    by_hand.step()
    for ours, theirs in zip(module.critic.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_validation_logs_counterfactual_quality_under_its_record_names():
    """val/validity and val/proximity_l1: counterfactual_quality's means over every (x, t != label) pair."""
    from ganmex.metrics.counterfactual import counterfactual_quality

    module = _module().eval()
    logged = {}
    module.log = lambda name, value, **kwargs: logged.update({name: float(value)})
    torch.manual_seed(0)
    images, labels = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        module.validation_step((images, labels), 0)
        pairs = [(x, t) for x, c in zip(images, labels.tolist(), strict=True) for t in range(3) if t != c]
        x = torch.stack([p[0] for p in pairs])
        target = torch.tensor([p[1] for p in pairs])
        expected = counterfactual_quality(module.classify, x, module.counterfactuals(x, target), target)
    assert set(logged) == {"val/validity", "val/proximity_l1"}
    assert logged["val/validity"] == pytest.approx(expected["validity"].mean().item())
    assert logged["val/proximity_l1"] == pytest.approx(expected["proximity_l1"].mean().item(), rel=1e-5)
