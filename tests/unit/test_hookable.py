"""DeepLIFT, DeepLIFT-SHAP and LRP on foreign models: the right answer (Captum's on an equivalent network
whose nonlinearities are modules used once) or a one-line refusal, never gradient x delta."""

from __future__ import annotations

import logging

import captum.attr as ca
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganmex.explain.hookable import HooksUnsupported, audit, hookable
from ganmex.explain.methods import DeepLift, DeepLiftShap, applicable_methods, method_by_name
from ganmex.models.classifiers import resnet18
from ganmex.models.external import wrap_classifier

SIZE, CLASSES = 8, 5
MEAN, STD = [0.2], [0.4]


class Messy(nn.Module):
    """What users write: an in-place ReLU, a functional relu and max-pool, a max-pool module used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6, CLASSES)

    def forward(self, x):
        x = self.pool(self.act(self.bn(self.conv1(x))))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.max_pool2d(x, 2)
        return self.fc(x.flatten(1))


def clean_copy(m: Messy) -> nn.Sequential:
    """The same function with every nonlinearity a module of its own, used once, not in place."""
    return nn.Sequential(
        m.conv1, m.bn, nn.ReLU(), nn.MaxPool2d(2), m.conv2, nn.ReLU(), nn.MaxPool2d(2), nn.MaxPool2d(2),
        nn.Flatten(), m.fc,
    )  # fmt: skip


@pytest.fixture(scope="module")
def messy() -> Messy:
    torch.manual_seed(0)
    model = Messy().eval()
    model.bn.running_mean.uniform_(-0.2, 0.2)
    model.bn.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def data():
    torch.manual_seed(1)
    x = torch.rand(6, 1, SIZE, SIZE)
    return x, torch.rand_like(x) * 0.5, torch.arange(6) % CLASSES, (torch.arange(6) + 1) % CLASSES


def deeplift_of(model, x, baselines, source, target):
    return DeepLift().attribute(model, x, baselines, source, target)


def captum_difference(model, x, baselines, source, target):
    """Captum's DeepLIFT of logit_c - logit_t on a model it can hook fully, computed independently."""

    class Difference(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs, c, t):
            logits = self.model(inputs)
            return logits.gather(1, c[:, None]) - logits.gather(1, t[:, None])

    inputs = x.clone().requires_grad_(True)
    deeplift = ca.DeepLift(Difference())
    return deeplift.attribute(inputs, baselines, target=0, additional_forward_args=(source, target)).detach()


def test_audit_names_every_nonlinearity_a_hook_would_miss(messy, data):
    found = audit(wrap_classifier(messy, MEAN, STD), data[0][:1])
    assert found.inplace == ["net.act"]
    assert found.reused == {"net.pool": "net"}
    assert sorted(func for _, func in found.functional) == ["max_pool2d", "relu"]
    assert not found.opaque and not found.unsupported


def test_deeplift_on_inplace_functional_and_reused_nonlinearities_equals_captum_on_the_clean_copy(
    messy, data
):
    x, baselines, source, target = data
    wrapped = wrap_classifier(messy, MEAN, STD)
    reference = captum_difference(wrap_classifier(clean_copy(messy), MEAN, STD), x, baselines, source, target)
    ours = deeplift_of(wrapped, x, baselines, source, target)
    assert torch.allclose(ours, reference, atol=1e-6)
    # and it is not gradient x delta, which a model with hidden nonlinearities would silently give
    gradient = method_by_name("saliency", abs=False).attribute(wrapped, x, None, source, target)
    assert not torch.allclose(gradient * (x - baselines), reference, atol=1e-4)
    assert messy.act.inplace  # the user's model is left as it was


def test_deeplift_on_a_model_with_only_inplace_relus_equals_captum_on_its_non_inplace_copy(data):
    torch.manual_seed(2)
    conv, hidden, head = nn.Conv2d(1, 3, 3), nn.Linear(3 * 6 * 6, 8), nn.Linear(8, CLASSES)
    inplace = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten(), hidden, nn.ReLU(inplace=True), head)
    plain = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), hidden, nn.ReLU(), head)
    x, baselines, source, target = data
    reference = captum_difference(plain, x, baselines, source, target)
    assert torch.allclose(deeplift_of(inplace, x, baselines, source, target), reference, atol=1e-6)


def test_deeplift_on_an_exported_graph_equals_captum_on_the_clean_copy(messy, data):
    x, baselines, source, target = data
    batch = torch.export.Dim("batch")
    program = torch.export.export(messy, (x,), dynamic_shapes={"x": {0: batch}})
    exported = wrap_classifier(program.module(), MEAN, STD)
    reference = captum_difference(wrap_classifier(clean_copy(messy), MEAN, STD), x, baselines, source, target)
    assert torch.allclose(deeplift_of(exported, x, baselines, source, target), reference, atol=1e-6)


def test_deeplift_shap_uses_the_same_rewrite(messy, data):
    x, _, source, target = data
    references = torch.rand(3, 1, SIZE, SIZE)
    ours = DeepLiftShap().attribute(wrap_classifier(messy, MEAN, STD), x, references, source, target)
    clean = DeepLiftShap().attribute(
        wrap_classifier(clean_copy(messy), MEAN, STD), x, references, source, target
    )
    assert torch.allclose(ours, clean, atol=1e-6)


def test_torchscript_and_rule_less_nonlinearities_are_refused_with_the_reason(messy, data, caplog):
    x = data[0]
    scripted = wrap_classifier(torch.jit.trace(messy, x), MEAN, STD)
    with pytest.raises(HooksUnsupported, match=r"TorchScript \(net\): its operations are compiled"):
        hookable(scripted, x)
    gelu = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 4), nn.GELU(), nn.Linear(4, CLASSES)).eval()
    with pytest.raises(HooksUnsupported, match="no rule for GELU"):
        hookable(gelu, x)
    methods = {name: method_by_name(name) for name in ("deeplift", "deeplift_shap", "lrp", "saliency")}
    with caplog.at_level(logging.WARNING):
        usable = applicable_methods(methods, scripted, x[:1])
    assert list(usable) == ["saliency"]
    lines = [r.message for r in caplog.records if r.message.startswith("skipping attribution method")]
    reason = "TorchScript (net): its operations are compiled, not hookable modules"
    assert lines[0] == f"skipping attribution method deeplift: {reason}"
    assert len(lines) == 3


def test_lrp_runs_on_an_imported_sequential_and_is_skipped_on_other_graphs(messy, data):
    x, _, source, target = data
    torch.manual_seed(3)
    sequential = nn.Sequential(
        nn.Flatten(), nn.Linear(SIZE * SIZE, 6), nn.ReLU(inplace=True), nn.Linear(6, CLASSES)
    )
    lrp = method_by_name("lrp")
    out = lrp.attribute(wrap_classifier(sequential.eval(), MEAN, STD), x, None, source, target)
    # epsilon-LRP through Normalize and a ReLU net without biases sums to the logit difference; with biases,
    # minus what they absorb: compare with the same network written out of place
    plain = nn.Sequential(sequential[0], sequential[1], nn.ReLU(), sequential[3]).eval()
    expected = lrp.attribute(wrap_classifier(plain, MEAN, STD), x, None, source, target)
    assert torch.allclose(out, expected, atol=1e-6)
    with pytest.raises(HooksUnsupported, match="LRP needs the network as an nn.Sequential"):
        lrp.attribute(wrap_classifier(messy, MEAN, STD), x, None, source, target)


def test_resnet18_reuses_inplace_relus_and_deeplift_still_meets_completeness(data):
    torch.manual_seed(4)
    model = resnet18(1, CLASSES, SIZE, MEAN, STD).eval()
    x, baselines, source, target = data
    found = audit(model, x[:1])
    assert found.reused and found.inplace
    attributions = deeplift_of(model, x, baselines, source, target)
    with torch.no_grad():
        logits, base = model(x), model(baselines)
    delta = (logits.gather(1, source[:, None]) - logits.gather(1, target[:, None])).squeeze(1) - (
        base.gather(1, source[:, None]) - base.gather(1, target[:, None])
    ).squeeze(1)
    assert torch.allclose(attributions.sum((1, 2, 3)), delta, atol=1e-4)


def test_the_rewritten_copy_shares_weights_so_in_place_randomisation_reaches_it(messy, data):
    x = data[0]
    model = Messy().eval()
    model.load_state_dict(messy.state_dict())
    wrapped = wrap_classifier(model, MEAN, STD)
    copy = hookable(wrapped, x)
    assert copy is not wrapped
    with torch.no_grad():
        model.fc.weight.mul_(-1.0)
        assert torch.allclose(copy(x), wrapped(x), atol=1e-6)
