"""Attribution methods against their own guarantees (completeness, summation-to-delta, null baseline)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganmex.explain.api import compatible, explain, explain_all
from ganmex.explain.baselines import BaselineContext, build_baselines
from ganmex.explain.methods import (
    LRP,
    METHODS,
    AttributionMethod,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
    build_methods,
    method_by_name,
)
from ganmex.explain.target import pair_scalar, scalar_of
from ganmex.models.classifiers import Normalize, mnist_cnn

SIZE = 12
CLASSES = 4


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    model = mnist_cnn(1, CLASSES, SIZE, [0.13], [0.31], width=4, hidden=16, kernel_size=4)
    model.head.weight.data *= 20  # logits of a trained net's scale, so f(x) - f(baseline) is not tiny
    return model.double().eval().requires_grad_(False)


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, SIZE, SIZE, generator=gen, dtype=torch.float64)
    return x, torch.tensor([0, 1, 2]), torch.tensor([3, 2, 1])


@pytest.fixture(scope="module")
def generator():
    """A randomly initialised StarGAN generator as the `ganmex` baseline's G(x, t)."""
    from ganmex.models.counterfactual import CounterfactualGenerator
    from ganmex.models.stargan import Generator

    torch.manual_seed(0)
    return CounterfactualGenerator(Generator(1, CLASSES, SIZE, conv_dim=4, n_res=1)).double()


@pytest.fixture(scope="module")
def baselines(net, generator):
    train = torch.rand(200, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    config = {
        "zero": {"_target_": "ganmex.explain.baselines.Zero"},
        "blur": {"_target_": "ganmex.explain.baselines.Blur", "sigma": 2.0},
        "uniform": {"_target_": "ganmex.explain.baselines.Uniform", "seed": 0},
        "mdts": {"_target_": "ganmex.explain.baselines.MDTS", "chunk_size": 7},
        "ganmex": {"_target_": "ganmex.explain.baselines.Ganmex"},
        "training_distribution": {
            "_target_": "ganmex.explain.baselines.TrainingDistribution",
            "n_samples": 6,
        },
    }
    context = BaselineContext(classifier=net, train_images=train, generator=generator)
    return build_baselines(config, context)


def _method(name: str) -> AttributionMethod:
    kwargs = {"method": Saliency()} if name == "noise_tunnel" else {}
    return method_by_name(name, **kwargs)


@pytest.mark.parametrize("baseline", ["zero", "blur", "uniform", "mdts", "ganmex"])
def test_integrated_gradients_completeness(net, batch, baselines, baseline):
    x, source, target = batch
    method = IntegratedGradients(steps=300, method="gausslegendre", internal_batch_size=256)
    result = explain(x, source, target, method, baselines[baseline], model=net)
    expected = scalar_of(net, x, source, target) - scalar_of(net, result.baselines, source, target)
    total = result.attributions.sum((1, 2, 3))
    # 1% of |f(x) - f(x')|; pairs whose difference is tiny (< 0.1 logit) get 1% of 0.1 instead
    assert ((total - expected).abs() <= 0.01 * expected.abs().clamp(min=0.1)).all(), (total, expected)


@pytest.mark.parametrize("contrast", ["one_vs_one", "logit_c"])
def test_deeplift_summation_to_delta(net, batch, baselines, contrast):
    x, source, target = batch
    for name in ("zero", "blur", "ganmex"):
        method = method_by_name("deeplift", contrast=contrast)
        result = explain(x, source, target, method, baselines[name], model=net)
        expected = scalar_of(net, x, source, target, contrast) - scalar_of(
            net, result.baselines, source, target, contrast
        )
        assert torch.allclose(result.attributions.sum((1, 2, 3)), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "name", ["integrated_gradients", "deeplift", "occlusion", "shapley_sampling", "feature_ablation"]
)
def test_baseline_equal_to_input_gives_zero(net, batch, name):
    x, source, target = batch
    attributions = _method(name).attribute(net, x, x.clone(), source, target)
    assert attributions.abs().max() < 1e-10


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_with_every_compatible_baseline(net, batch, baselines, name):
    x, source, target = batch
    method = _method(name)
    usable = [b for b in baselines.values() if compatible(method, b)] or [None]
    for baseline in usable:
        with torch.inference_mode():  # as inside Lightning's test/predict loops
            result = explain(x, source, target, method, baseline, model=net)
        assert result.attributions.shape == x.shape
        assert torch.isfinite(result.attributions).all()
        assert not result.attributions.is_inference()


def test_incompatible_baseline_is_refused(net, batch, baselines):
    x, source, target = batch
    with pytest.raises(ValueError, match="takes per_example baselines but 'training_distribution'"):
        explain(x, source, target, "integrated_gradients", baselines["training_distribution"], model=net)
    with pytest.raises(ValueError, match="needs a reference set"):
        method_by_name("deeplift_shap").attribute(net, x, torch.zeros(2, 1, 5, 5), source, target)
    with pytest.raises(ValueError, match="source must be a tensor of 3 class indices"):
        explain(x, source[:2], target, "saliency", model=net)


def test_explain_all_covers_the_grid(net, batch, baselines):
    x, source, target = batch
    methods = {
        "saliency": _method("saliency"),
        "deeplift": _method("deeplift"),
        "gs": _method("gradient_shap"),
    }
    results = explain_all(x, source, target, methods, baselines, model=net)
    per_example = {"zero", "blur", "uniform", "mdts", "ganmex"}
    expected = (
        {("saliency", "none")} | {("deeplift", b) for b in per_example} | {("gs", "training_distribution")}
    )
    assert set(results) == expected


def test_saliency_is_the_gradient_of_the_pair_difference(net, batch):
    x, source, target = batch
    xg = x.clone().requires_grad_(True)
    pair_scalar(net(xg), source, target).sum().backward()
    attributions = Saliency(abs=False).attribute(net, x, None, source, target)
    assert torch.allclose(attributions, xg.grad)


def test_occlusion_normalised_by_window():
    """A linear model: occluding a k x k window with zeros drops w.x over it; normalised per pixel."""
    weight = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    model = nn.Sequential(Normalize([0.0], [1.0]), nn.Flatten(), nn.Linear(16, 2, bias=False)).double()
    model[2].weight.data = torch.cat([weight.view(1, 16), torch.zeros(1, 16, dtype=torch.float64)])
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    occlusion = method_by_name("occlusion", window=2, stride=2, normalize_by_window=True)
    result = occlusion.attribute(model, x, torch.zeros_like(x), torch.tensor([0]), torch.tensor([1]))
    window_sums = torch.nn.functional.avg_pool2d(weight, 2) * 4
    expected = torch.nn.functional.interpolate(window_sums, scale_factor=2) / 4
    assert torch.allclose(result, expected)


def test_lrp_epsilon_on_a_linear_model_is_hand_computable():
    """No bias: relevance of pixel i is z_i (w_ci - w_ti), z the normalised input; sums to the pair."""
    torch.manual_seed(0)
    model = nn.Sequential(Normalize([0.2], [0.5]), nn.Flatten(), nn.Linear(9, 3, bias=False)).double().eval()
    x = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    source, target = torch.tensor([0, 2]), torch.tensor([1, 0])
    relevance = LRP(epsilon=1e-12).attribute(model, x, None, source, target)
    z = ((x - 0.2) / 0.5).flatten(1)
    w = model[2].weight
    expected = (z * (w[source] - w[target])).view_as(x)
    assert torch.allclose(relevance, expected, atol=1e-8)
    assert torch.allclose(relevance.sum((1, 2, 3)), scalar_of(model, x, source, target))


def test_lrp_runs_on_mnist_cnn_and_conserves_without_biases(batch):
    torch.manual_seed(3)
    model = mnist_cnn(1, CLASSES, SIZE, [0.13], [0.31], width=4, hidden=16, kernel_size=4).double().eval()
    for module in model.modules():
        if getattr(module, "bias", None) is not None and not isinstance(module, Normalize):
            module.bias.data.zero_()
    x, source, target = batch
    relevance = LRP(epsilon=1e-12).attribute(model, x, None, source, target)
    assert torch.allclose(relevance.sum((1, 2, 3)), scalar_of(model, x, source, target), rtol=1e-6)


def test_lrp_unsupported_layer_has_a_clear_error(batch):
    model = nn.Sequential(nn.Flatten(), nn.GELU(), nn.Linear(SIZE * SIZE, CLASSES)).double()
    x, source, target = batch
    with pytest.raises(TypeError, match=r"LRP has no rule for layer\(s\) 1 \(GELU\)"):
        LRP().attribute(model, x, None, source, target)


def test_noise_tunnel_with_zero_noise_equals_inner_method(net, batch):
    x, source, target = batch
    smooth = NoiseTunnel(Saliency(abs=False), nt_type="smoothgrad", nt_samples=3, stdevs=0.0)
    plain = Saliency(abs=False).attribute(net, x, None, source, target)
    assert torch.allclose(smooth.attribute(net, x, None, source, target), plain)
    with pytest.raises(ValueError, match="unknown nt_type='bad'"):
        NoiseTunnel(Saliency(), nt_type="bad")


def test_build_methods_from_yaml_mapping_and_unknown_names():
    methods = build_methods(
        {"ig": {"_target_": "ganmex.explain.methods.IntegratedGradients", "steps": 7}}, contrast="logit_c"
    )
    assert methods["ig"].name == "ig" and methods["ig"].steps == 7 and methods["ig"].contrast == "logit_c"
    with pytest.raises(KeyError, match="unknown attribution method 'nope'; choose one of"):
        method_by_name("nope")
    with pytest.raises(ValueError, match="unknown integration rule method='simpson'"):
        IntegratedGradients(method="simpson")


def test_attribution_group_composes_from_hydra(make_config):
    cfg = make_config(["attribution=[integrated_gradients,deeplift,occlusion]", "baselines=[zero,blur]"])
    assert list(cfg.attribution) == ["integrated_gradients", "deeplift", "occlusion"]
    methods = build_methods(cfg.attribution)
    assert [m.baseline_kind for m in methods.values()] == ["per_example"] * 3
    deepexplain = build_methods(make_config(["attribution=deepexplain"]).attribution)
    ig = deepexplain["integrated_gradients"]
    assert (ig.steps, ig.method) == (100, "riemann_right")
    assert deepexplain["lrp"].epsilon == 1e-4 and deepexplain["shapley_sampling"].n_samples == 5
    assert deepexplain["occlusion"].normalize_by_window
