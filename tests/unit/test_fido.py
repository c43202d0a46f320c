"""FIDO / BBMP saliency and the in-fillers: losses vs hand computation, the concrete relaxation's limit,
masks that find a known class-deciding patch, and in-fillers that never touch observed pixels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ganmex.explain.fido import (
    FidoSaliency,
    concrete_sample,
    smoothness,
    upsample,
    warmup,
)
from ganmex.explain.infill import (
    AutoencoderInFill,
    BlurInFill,
    ConstantInFill,
    FixedInFill,
    GanmexInFill,
    LocalMeanInFill,
    RandomColourInFill,
)
from ganmex.explain.methods import AttributionMethod
from ganmex.explain.target import pair_scalar
from ganmex.models.autoencoder import ConvAutoencoder

CONF = Path(__file__).resolve().parents[2] / "conf"


# ---------------------------------------------------------------------------------------------- scores
def test_log_odds_matches_softmax_odds():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], dtype=torch.float64)
    source = torch.tensor([0, 2])
    expected = torch.tensor(
        [1.0 - math.log(math.exp(2.0) + math.exp(3.0)), 4.0 - math.log(math.exp(0.5) + math.exp(-1.0))]
    )
    assert torch.allclose(pair_scalar(logits, source, None, "log_odds"), expected.double())
    p = logits.softmax(1).gather(1, source[:, None]).squeeze(1)
    assert torch.allclose(pair_scalar(logits, source, None, "log_odds"), torch.log(p / (1 - p)))


def test_one_vs_one_is_the_logit_difference_and_needs_a_target():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert pair_scalar(logits, torch.tensor([2]), torch.tensor([0]), "one_vs_one").item() == pytest.approx(
        2.0
    )
    assert pair_scalar(logits, torch.tensor([2]), None, "logit_c").item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one_vs_one needs target"):
        pair_scalar(logits, torch.tensor([2]), None, "one_vs_one")
    with pytest.raises(ValueError, match="unknown contrast 'odds'; choose one_vs_one"):
        FidoSaliency(contrast="odds")


# ------------------------------------------------------------------------------------- losses by hand
class Linear3(nn.Module):
    """logits = W @ flatten(x) + b on 1x2x2 images, 3 classes: a model whose loss is easy by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.tensor(
            [[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0], [2.0, 0.0, 1.0, -1.0]], dtype=torch.float64
        )
        self.b = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def _hand_log_odds(logits: list[float], c: int) -> float:
    return logits[c] - math.log(sum(math.exp(v) for i, v in enumerate(logits) if i != c))


def _hand_logits(model: Linear3, x_hat: list[float]) -> list[float]:
    return [
        sum(w * v for w, v in zip(row, x_hat, strict=True)) + b
        for row, b in zip(model.w.tolist(), model.b.tolist(), strict=True)
    ]


X = [0.9, 0.2, 0.7, 0.4]
FILL = [0.1, 0.5, 0.0, 0.3]
M = [0.8, 0.3, 0.6, 0.1]


@pytest.mark.parametrize("objective", ["ssr", "sdr"])
def test_bbmp_loss_matches_hand_computation(objective):
    reg, tv, step, rw_max = 0.3, 0.7, 5, 10
    method = FidoSaliency(
        objective, "bbmp", dropout_param_size=2, reg_coef=reg, tv_coef=tv, rw_max=rw_max, batch_size=1
    )
    model = Linear3()
    x = torch.tensor(X, dtype=torch.float64).view(1, 1, 2, 2)
    fill = torch.tensor(FILL, dtype=torch.float64).view(1, 1, 2, 2)
    params = torch.tensor(M, dtype=torch.float64).view(1, 1, 2, 2)
    keep = method.sample_keep(params, (2, 2))
    loss, score = method.step_loss(model, x, keep, fill, params, torch.tensor([1]), None, step)

    z = M if objective == "ssr" else [1 - m for m in M]  # SDR's parameter is the drop mask
    x_hat = [zi * xi + (1 - zi) * fi for zi, xi, fi in zip(z, X, FILL, strict=True)]
    s = _hand_log_odds(_hand_logits(model, x_hat), 1)
    # TV on the 2x2 mask [[m0, m1], [m2, m3]]: mean |vertical diff| + mean |horizontal diff|
    roughness = (abs(M[2] - M[0]) + abs(M[3] - M[1])) / 2 + (abs(M[1] - M[0]) + abs(M[3] - M[2])) / 2
    weight = step / rw_max
    expected = (-s if objective == "ssr" else s) + weight * (reg * sum(M) + tv * roughness)
    assert score.item() == pytest.approx(s, abs=1e-12)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("objective", ["ssr", "sdr"])
def test_fido_loss_averages_concrete_samples_and_penalises_probabilities(objective):
    reg, temp = 0.2, 0.5
    method = FidoSaliency(
        objective, "fido", dropout_param_size=2, reg_coef=reg, rw_max=0, batch_size=2, temperature=temp
    )
    model = Linear3()
    theta = [0.3, -1.2, 2.0, 0.0]
    u = [[0.2, 0.9, 0.5, 0.7], [0.6, 0.1, 0.05, 0.4]]
    x = torch.tensor(X, dtype=torch.float64).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    fill = torch.tensor(FILL, dtype=torch.float64).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    params = torch.tensor(theta, dtype=torch.float64).view(1, 1, 2, 2)
    keep = method.sample_keep(params, (2, 2), torch.tensor(u, dtype=torch.float64).view(2, 1, 1, 2, 2))
    loss, score = method.step_loss(model, x, keep, fill, params, torch.tensor([0, 0]), None, step=0)

    scores = []
    for draw in u:
        sample = [
            1 / (1 + math.exp(-(t + math.log(v) - math.log(1 - v)) / temp))
            for t, v in zip(theta, draw, strict=True)
        ]
        z = sample if objective == "ssr" else [1 - v for v in sample]
        x_hat = [zi * xi + (1 - zi) * fi for zi, xi, fi in zip(z, X, FILL, strict=True)]
        scores.append(_hand_log_odds(_hand_logits(model, x_hat), 0))
    s = sum(scores) / 2
    prob_sum = sum(1 / (1 + math.exp(-t)) for t in theta)
    assert score.item() == pytest.approx(s, abs=1e-12)
    assert loss.item() == pytest.approx((-s if objective == "ssr" else s) + reg * prob_sum, abs=1e-12)


def test_first_adam_step_moves_each_bbmp_cell_against_its_hand_gradient():
    # 2 classes, so s = (w0 - w1) . x_hat + (b0 - b1) and d(SSR loss)/dm = -(w0 - w1) * (x - fill) + reg
    model = Linear3()
    model.w, model.b = model.w[:2], model.b[:2]
    reg, lr = 0.3, 0.1
    method = FidoSaliency(
        "ssr", "bbmp", dropout_param_size=2, reg_coef=reg, rw_max=0, lr=lr, epochs=1, batch_size=1
    )
    x = torch.tensor(X, dtype=torch.float64).view(1, 1, 2, 2)
    fill = torch.tensor(FILL, dtype=torch.float64).view(1, 1, 2, 2)
    saliency = method(model, x, 0, infill=FixedInFill(fill))
    w_diff = (model.w[0] - model.w[1]).tolist()
    grads = [-wd * (xi - fi) + reg for wd, xi, fi in zip(w_diff, X, FILL, strict=True)]
    expected = [0.5 - lr * math.copysign(1.0, g) for g in grads]  # Adam's first step is lr * sign(g)
    assert {math.copysign(1, g) for g in grads} == {-1.0, 1.0}, "the example must move cells both ways"
    assert saliency.flatten().tolist() == pytest.approx(expected, abs=1e-6)


def test_warmup_ramps_linearly_then_holds():
    assert [warmup(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert warmup(0, 0) == 1.0


def test_smoothness_tv_and_l2_by_hand():
    m = torch.tensor([[0.0, 1.0], [0.5, 0.5]]).view(1, 1, 2, 2)
    # vertical diffs 0.5, -0.5; horizontal diffs 1.0, 0.0
    assert smoothness(m, "tv").item() == pytest.approx(0.5 + 0.5)
    assert smoothness(m, "l2").item() == pytest.approx(0.25 + 0.5)


def test_upsample_is_bilinear_and_identity_at_full_size():
    m = torch.rand(2, 1, 4, 4)
    assert upsample(m, (4, 4)) is m
    up = upsample(torch.tensor([[[[0.0, 1.0]]]]), (1, 4))
    assert up.flatten().tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])


# ------------------------------------------------------------------------------------- concrete limit
def test_concrete_sample_tends_to_a_hard_bernoulli_as_temperature_goes_to_zero():
    gen = torch.Generator().manual_seed(0)
    logit_p = torch.randn(2000, generator=gen, dtype=torch.float64) * 2
    u = torch.rand(2000, generator=gen, dtype=torch.float64)
    hard = (logit_p + torch.log(u) - torch.log1p(-u) > 0).double()
    errors = [(concrete_sample(logit_p, t, u) - hard).abs().mean().item() for t in (1.0, 0.1, 0.01, 0.001)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 2e-3
    # the hard limit is a Bernoulli(sigmoid(logit_p)) draw: frequency of ones matches p
    p = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    draws = concrete_sample(
        torch.logit(p).expand(40000, 3), 0.001, torch.rand(40000, 3, generator=gen, dtype=torch.float64)
    )
    assert ((draws > 0.01) & (draws < 0.99)).double().mean() < 0.01
    assert torch.allclose(draws.mean(0), p, atol=0.01)


def test_concrete_sample_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature=0 must be > 0"):
        concrete_sample(torch.zeros(3), 0)


# -------------------------------------------------------------------------- masks find a known patch
class BrightPatchDetector(nn.Module):
    """3 classes; class 1's evidence is the brightest 4x4 window mean (box filter + global max pool), so the
    class is decided by the bright 4x4 patch wherever it is: logit_1 = 12 * (evidence - 0.5), others 0."""

    def forward(self, x):
        evidence = nn.functional.avg_pool2d(x, 4, stride=1).flatten(1).max(1).values
        zeros = torch.zeros_like(evidence)
        return torch.stack([zeros, 12 * (evidence - 0.5), zeros], 1)


def _patch_images() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 12, 12, generator=gen) * 0.3  # background windows average ~0.15
    truth = torch.zeros_like(x, dtype=torch.bool)
    truth[0, :, 2:6, 6:10] = True
    truth[1, :, 6:10, 2:6] = True
    x[truth] = 1.0
    return x, truth


def _iou(saliency: torch.Tensor, truth: torch.Tensor) -> list[float]:
    pred = saliency > 0.5
    return ((pred & truth).flatten(1).sum(1) / (pred | truth).flatten(1).sum(1)).tolist()


@pytest.mark.parametrize("grid", [12, 6])
@pytest.mark.parametrize("mask", ["fido", "bbmp"])
@pytest.mark.parametrize("objective", ["ssr", "sdr"])
def test_masks_concentrate_on_the_class_deciding_patch(objective, mask, grid):
    # Threshold: IoU >= 0.6 between the mask thresholded at 0.5 and the patch. The patch is 16 of 144 pixels,
    # aligned to the 2x2-pixel cells of the 6x6 grid, so a perfect mask gives IoU 1 at both grids (bilinear x2
    # upsampling thresholded at 0.5 recovers a block of cells exactly); one 2x2 cell too many or too few
    # still gives >= 0.75, but the ring of cells around the patch that bilinear upsampling tempts a weakly
    # regularised coarse mask into (each neighbour cell feeds 25% of the patch's edge pixels) gives
    # 16/64 = 0.25, and a mask that ignores where the patch is gives <= 16/144 = 0.11.
    # reg_coef is per grid cell, so it scales with the cell area to keep the same per-pixel price (0.2): above
    # the background's evidence per pixel (~0.1), below the patch's (0.75).
    x, truth = _patch_images()
    method = FidoSaliency(
        objective,
        mask,
        ConstantInFill(0.0),
        dropout_param_size=grid,
        reg_coef=0.2 * (12 / grid) ** 2,
        lr=0.1,
        epochs=40,
        batch_size=4 if mask == "fido" else 1,
        rw_max=10,
        seed=0,
    )
    saliency = method.attribute(BrightPatchDetector(), x, None, torch.tensor([1, 1]), torch.tensor([0, 2]))
    assert saliency.shape == x.shape
    assert all(v >= 0.6 for v in _iou(saliency, truth)), _iou(saliency, truth)


def test_an_in_fill_equal_to_the_image_carries_no_evidence_so_the_sdr_mask_vanishes():
    x, _ = _patch_images()
    method = FidoSaliency(
        "sdr", "bbmp", dropout_param_size=6, reg_coef=0.05, epochs=15, batch_size=1, rw_max=0
    )
    assert method.baseline_kind == "per_example"
    saliency = method.attribute(
        BrightPatchDetector(), x, x.clone(), torch.tensor([1, 1]), torch.tensor([0, 0])
    )
    assert saliency.max() < 0.1


def test_batched_bbmp_equals_one_image_at_a_time():
    x, _ = _patch_images()
    method = FidoSaliency("sdr", "bbmp", ConstantInFill(0.0), dropout_param_size=6, epochs=15, batch_size=1)
    both = method(BrightPatchDetector(), x, 1)
    alone = torch.cat([method(BrightPatchDetector(), x[i : i + 1], 1) for i in range(2)])
    assert torch.allclose(both, alone, atol=1e-6)


def test_fido_is_reproducible_with_a_seed():
    x, _ = _patch_images()
    method = FidoSaliency("ssr", "fido", ConstantInFill(0.0), dropout_param_size=6, epochs=5, seed=3)
    assert torch.equal(method(BrightPatchDetector(), x, 1), method(BrightPatchDetector(), x, 1))


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"objective": "ssd"}, "fido objective='ssd' is not valid; choose one of: ssr, sdr"),
        ({"mask": "gauss"}, "fido mask='gauss' is not valid; choose one of: fido, bbmp"),
        ({"smoothness": "l1"}, "fido smoothness='l1' is not valid; choose one of: tv, l2"),
        ({"init": 1.0}, r"init=1.0 is the initial mask probability and must lie strictly in \(0, 1\)"),
        ({"epochs": 0}, "epochs=0 must be a positive integer"),
        ({"reg_coef": -1}, "reg_coef=-1 must be >= 0"),
        ({"infill": "blur"}, "infill must be an InFiller"),
    ],
)
def test_bad_settings_name_the_value_and_the_choices(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        FidoSaliency(**kwargs)


def test_missing_in_fill_and_targets_are_explained():
    x = torch.rand(2, 1, 12, 12)
    method = FidoSaliency(epochs=1)
    assert isinstance(method, AttributionMethod)
    with pytest.raises(ValueError, match="needs per-example baselines as in-fill"):
        method.attribute(BrightPatchDetector(), x, None, torch.tensor([1, 1]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="one_vs_one needs target classes"):
        FidoSaliency(contrast="one_vs_one", infill=ConstantInFill(), epochs=1)(BrightPatchDetector(), x, 1)
    with pytest.raises(ValueError, match=r"source must be an int or 2 class indices"):
        FidoSaliency(infill=ConstantInFill(), epochs=1)(BrightPatchDetector(), x, torch.tensor([1, 1, 1]))


# -------------------------------------------------------------------------------------- in-fillers
class FlipGenerator:
    """Stands in for GANMEX's G(x, t): a deterministic, target-dependent counterfactual."""

    def counterfactual(self, x, target):
        return (1 - x) * (target.view(-1, 1, 1, 1) + 1) / 10


def _infillers(x: torch.Tensor) -> dict:
    torch.manual_seed(0)
    return {
        "mean": ConstantInFill(0.3),
        "blur": BlurInFill(1.5),
        "random": RandomColourInFill(0.2, seed=0),
        "local_mean": LocalMeanInFill(3),
        "autoencoder": AutoencoderInFill(
            ConvAutoencoder(x.shape[1], x.shape[-1], width=4, latent_channels=2)
        ),
        "ganmex": GanmexInFill(FlipGenerator()),
        "baseline": FixedInFill(torch.rand_like(x)),
    }


@pytest.mark.parametrize(
    "name", ["mean", "blur", "random", "local_mean", "autoencoder", "ganmex", "baseline"]
)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_in_filler_keeps_observed_pixels_and_passes_no_gradient_through_the_fill(name, channels):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, channels, 12, 12, generator=gen)
    mask = (torch.rand(3, 1, 12, 12, generator=gen) > 0.5).float()
    filler = _infillers(x)[name]
    out = filler.infill(x, mask, torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]))
    observed = mask.expand_as(x).bool()
    assert out.shape == x.shape
    assert torch.equal(out[observed], x[observed])
    assert not torch.equal(out[~observed], x[~observed])
    assert out.min() >= 0 and out.max() <= 1
    # d out / d x = mask and d out / d mask = x - fill: the fill is a constant to the optimiser
    x_req, mask_req = x.clone().requires_grad_(), mask.clone().requires_grad_()
    filled = filler.infill(x_req, mask_req, torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]))
    filled.sum().backward()
    assert torch.equal(x_req.grad, mask.expand_as(x))
    # where nothing is observed, out = fill, so d out / d mask = x - fill = x - out there
    hidden = mask.expand(3, 1, 12, 12) == 0
    assert torch.allclose(
        mask_req.grad[hidden], (x - filled.detach()).sum(1, keepdim=True)[hidden], atol=1e-6
    )


def test_local_mean_fills_from_observed_neighbours_by_hand():
    x = (torch.arange(9.0) / 8).view(1, 1, 3, 3)
    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 0, 0] = mask[0, 0, 0, 2] = mask[0, 0, 2, 2] = 1
    fill = LocalMeanInFill(3).fill(x, mask, None, None)
    observed = [0.0, 2 / 8, 8 / 8]
    assert fill[0, 0, 1, 1].item() == pytest.approx(sum(observed) / 3)  # sees all three
    assert fill[0, 0, 0, 1].item() == pytest.approx((0.0 + 2 / 8) / 2)  # sees the top row's two
    assert fill[0, 0, 2, 0].item() == pytest.approx(sum(observed) / 3)  # sees none: image mean of observed


def test_blur_keeps_a_constant_image_and_constant_fill_is_per_channel():
    flat = torch.full((1, 2, 9, 9), 0.4)
    assert torch.allclose(BlurInFill(2.0).fill(flat, None, None, None), flat)
    fill = ConstantInFill([0.1, 0.9]).fill(flat, None, None, None)
    assert fill[0, :, 0, 0].tolist() == pytest.approx([0.1, 0.9])
    with pytest.raises(ValueError, match=r"in-fill value 2.0 must be in \[0, 1\]"):
        ConstantInFill(2.0)


def test_in_filler_errors_name_the_problem():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"mask shape \(2, 1, 4, 4\) does not fit images \(2, 1, 8, 8\)"):
        ConstantInFill().infill(x, torch.ones(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"ganmex in-fill needs target classes"):
        GanmexInFill(FlipGenerator()).infill(x, torch.ones(2, 1, 8, 8), torch.tensor([1, 1]))
    with pytest.raises(TypeError, match=r"needs an object with .counterfactual\(x, target\)"):
        GanmexInFill(object())
    with pytest.raises(ValueError, match="window=4 must be an odd number"):
        LocalMeanInFill(4)


# ------------------------------------------------------------------------------------------ configs
def test_attribution_configs_compose_and_build_with_a_chosen_in_filler():
    from hydra import compose, initialize_config_dir

    from ganmex.explain.methods import build_methods

    names = ["fido_ssr", "fido_sdr", "bbmp_ssr", "bbmp_sdr"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"attribution=[{','.join(names)}]", "+infill@attribution.fido_sdr.infill=local_mean"],
        )
    methods = build_methods(cfg.attribution)
    assert list(methods) == names
    for name, method in methods.items():
        assert isinstance(method, FidoSaliency) and method.name == name
        assert (method.mask, method.objective) == tuple(name.split("_"))
    assert (
        isinstance(methods["fido_sdr"].infiller, LocalMeanInFill)
        and methods["fido_sdr"].baseline_kind == "none"
    )
    assert methods["fido_ssr"].infiller is None and methods["fido_ssr"].baseline_kind == "per_example"


@pytest.mark.parametrize("name", ["mean", "blur", "random", "local_mean"])
def test_infill_configs_instantiate(name):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge({"seed": 0}, {"node": OmegaConf.load(CONF / "infill" / f"{name}.yaml")})
    filler = instantiate(cfg.node)
    assert filler.name == name
