"""Perturbation curves, references and ROAD imputation on hand-computable linear models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganmex.metrics import BlurReference, NoisyLinearImputer, PerturbationCurve, ZeroReference
from ganmex.metrics.perturbation import InsertionCurve, feature_map, removal_counts


def linear_model(w_source: list[float], w_target: list[float]) -> nn.Module:
    """Two-class linear model on 1x2x2 images: logit_k = w_k . x (no bias)."""
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w_source, w_target]))
    return nn.Sequential(nn.Flatten(), lin).eval()


@pytest.fixture
def pair():
    model = linear_model([3.0, 1.0, 0.0, 2.0], [0.0, 0.0, 1.0, 0.0])
    x = torch.tensor([[[[1.0, 1.0], [1.0, 0.5]]]])
    # score = logit_0 - logit_1 = 3*1 + 1*1 - 1*1 + 2*0.5 = 4; contributions (grad x input) = [3, 1, -1, 1]
    a = torch.tensor([[[[3.0, 1.0], [-1.0, 1.0]]]])
    return model, x, a


def test_deletion_curve_auc_aopc_and_flip_by_hand(pair):
    model, x, a = pair
    m = PerturbationCurve(num_steps=None, features_per_step=1)
    m.update(model, x, a, 0, 1, ZeroReference())
    out = m.compute()
    # MoRF order 3, 1, 1, -1 (stable ties: pixel 1 before pixel 3): scores 4, 1, 0, -1, 0
    assert out["curve"].tolist() == [[4.0, 1.0, 0.0, -1.0, 0.0]]
    assert out["fractions"].tolist() == [[0.0, 0.25, 0.5, 0.75, 1.0]]
    assert out["auc"].item() == pytest.approx(0.25 * (4 / 2 + 1 + 0 - 1 + 0 / 2))
    assert out["aopc"].item() == pytest.approx((0 + 3 + 4 + 5 + 4) / 5)
    # normalised by f(x) - f(reference) = 4 - 0
    assert out["auc_normalised"].item() == pytest.approx(0.25 * (1 / 2 + 0.25 + 0 - 0.25 + 0))
    # logit_1 > logit_0 first when the score turns negative, after 3 of 4 pixels
    assert out["flip_fraction"].item() == pytest.approx(0.75)


def test_insertion_is_lerf_deletion_read_backwards(pair):
    model, x, a = pair
    a = a + torch.tensor([0.0, 0.1, 0.0, 0.0]).view(1, 1, 2, 2)  # break the tie so both orders are unique
    ins = PerturbationCurve(mode="insertion", num_steps=None, features_per_step=1)
    lerf = PerturbationCurve(order="lerf", num_steps=None, features_per_step=1)
    reference = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]]]])  # predicted as class 1: score -1
    ins.update(model, x, a, 0, 1, reference)
    lerf.update(model, x, a, 0, 1, reference)
    assert torch.equal(ins.compute()["curve"], lerf.compute()["curve"].flip(1))
    out = ins.compute()
    assert out["curve"].tolist() == [[-1.0, 2.0, 3.0, 4.0, 4.0]]  # restores pixels 0, 1, 3, then 2 (x = ref)
    assert out["flip_fraction"].item() == pytest.approx(0.25)  # back to class 0 after the top pixel


def test_per_example_baseline_reference_and_never_flipping(pair):
    model, x, a = pair
    baseline = torch.full_like(x, 0.5)  # score 0.5 * 5 = 2.5 > 0: never flips to the target
    m = PerturbationCurve(num_steps=2)
    m.update(model, x, a, torch.tensor([0]), torch.tensor([1]), baseline)
    out = m.compute()
    assert out["fractions"].tolist() == [[0.0, 0.5, 1.0]]
    # half of the features: pixels 0 and 1 go from 1 to 0.5, i.e. -3 * 0.5 - 1 * 0.5
    assert out["curve"].tolist() == [[4.0, 2.0, 2.5]]
    assert torch.isnan(out["flip_fraction"]).all()


def test_chunked_forward_passes_give_the_same_curves():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 5)).eval()
    x, a = torch.rand(6, 2, 7, 7), torch.randn(6, 1, 7, 7)
    src, tgt = torch.randint(0, 5, (6,)), torch.randint(0, 5, (6,))
    big = PerturbationCurve(
        feature="patch", patch_size=3, num_steps=None, features_per_step=1, max_batch=10_000
    )
    small = PerturbationCurve(feature="patch", patch_size=3, num_steps=None, features_per_step=1, max_batch=7)
    for m in (big, small):
        m.update(model, x[:4], a[:4], src[:4], tgt[:4], BlurReference(1.0))
        m.update(model, x[4:], a[4:], src[4:], tgt[4:], BlurReference(1.0))
    for key, value in big.compute().items():
        torch.testing.assert_close(small.compute()[key], value, equal_nan=True)
    assert big.compute()["curve"].shape == (6, 10)  # 9 patches of 3x3 on a 7x7 grid, plus the start


def test_patch_grid_is_centred():
    ids, n = feature_map(5, 5, "patch", 2, torch.device("cpu"))
    # 5 px, patches of 2: 3 per side, padded by floor((6 - 5) / 2) = 0 before
    assert n == 9 and ids.view(5, 5)[0].tolist() == [0, 0, 1, 1, 2]
    # 7 px, patches of 3: 3 per side, padded by floor((9 - 7) / 2) = 1 before, as Quantus does
    ids, n = feature_map(7, 7, "patch", 3, torch.device("cpu"))
    assert n == 9 and ids.view(7, 7)[0].tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert ids.view(7, 7)[:, 0].tolist() == [0, 0, 3, 3, 3, 6, 6]


def test_removal_counts_and_bad_settings_say_what_to_fix():
    assert removal_counts(10, 4, None) == [0, 2, 5, 8, 10]
    assert removal_counts(10, None, 4) == [0, 4, 8, 10]
    with pytest.raises(ValueError, match="exactly one of num_steps"):
        PerturbationCurve(num_steps=5, features_per_step=2)
    with pytest.raises(
        ValueError, match="perturbation mode='remove' is not valid; choose one of: deletion, insertion"
    ):
        PerturbationCurve(mode="remove")
    with pytest.raises(ValueError, match="unknown contrast 'prob'"):
        PerturbationCurve(contrast="prob")
    m = PerturbationCurve()
    with pytest.raises(ValueError, match=r"attributions of shape \(1, 1, 3, 3\) do not match inputs"):
        m.update(nn.Flatten(), torch.rand(1, 1, 2, 2), torch.rand(1, 1, 3, 3), 0, 1, ZeroReference())
    with pytest.raises(ValueError, match="source must be an int or 1 class indices"):
        m.update(
            nn.Flatten(), torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), torch.zeros(2), 1, ZeroReference()
        )


def test_blur_keeps_constants_and_mass():
    x = torch.rand(2, 3, 16, 16)
    blurred = BlurReference(sigma=2.0)(x)
    assert blurred.shape == x.shape
    torch.testing.assert_close(BlurReference(2.0)(torch.full_like(x, 0.3)), torch.full_like(x, 0.3))
    assert blurred.std() < x.std()
    with pytest.raises(ValueError, match="sigma must be > 0"):
        BlurReference(0.0)


@pytest.mark.parametrize("solver", ["sparse", "cg"])
def test_road_imputation_is_the_weighted_neighbour_mean(solver):
    torch.manual_seed(0)
    x = torch.rand(3, 2, 9, 9)
    removed = torch.rand(3, 1, 9, 9) < 0.4
    out = NoisyLinearImputer(noise_std=0.0, tol=1e-10, max_iter=500, solver=solver).impute(x, removed)
    keep = ~removed.expand_as(x)
    assert torch.equal(out[keep], x[keep])
    # every removed pixel equals the 1/6 (direct), 1/12 (diagonal) weighted mean of its in-image neighbours
    w = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]]).view(1, 1, 3, 3)
    flat = out.reshape(6, 1, 9, 9).double()
    mean = F.conv2d(flat, w.double(), padding=1) / F.conv2d(torch.ones_like(flat), w.double(), padding=1)
    rem = removed.expand_as(x).reshape(6, 1, 9, 9)
    torch.testing.assert_close(flat[rem], mean[rem], atol=1e-5, rtol=0)
    # nothing known left: the image's own mean
    full = NoisyLinearImputer(noise_std=0.0, solver=solver).impute(
        x, torch.ones(3, 1, 9, 9, dtype=torch.bool)
    )
    torch.testing.assert_close(full, x.mean((2, 3), keepdim=True).expand_as(x))
    # one image fully removed beside partly removed ones in the same batch
    mixed = removed.clone()
    mixed[1] = True
    out = NoisyLinearImputer(noise_std=0.0, solver=solver, tol=1e-10, max_iter=500).impute(x, mixed)
    torch.testing.assert_close(out[1], x[1].mean((1, 2), keepdim=True).expand_as(x[1]))


def test_road_solvers_agree_and_bad_solver_is_named():
    torch.manual_seed(1)
    x = torch.rand(4, 1, 12, 12)
    removed = torch.rand(4, 1, 12, 12) < 0.7
    sparse = NoisyLinearImputer(noise_std=0.0, solver="sparse").impute(x, removed)
    cg = NoisyLinearImputer(noise_std=0.0, solver="cg", tol=1e-7, max_iter=1000).impute(x, removed)
    torch.testing.assert_close(sparse, cg, atol=1e-4, rtol=0)
    # dropping converged images from the CG batch changes nothing beyond the tolerance
    whole = NoisyLinearImputer(noise_std=0.0, tol=1e-7, max_iter=1000, active_set=False).impute(x, removed)
    torch.testing.assert_close(whole, cg, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown ROAD solver 'lu'"):
        NoisyLinearImputer(solver="lu")


def test_road_noise_is_seeded_and_curves_accept_imputers():
    x = torch.rand(2, 1, 6, 6)
    removed = torch.rand(2, 1, 6, 6) < 0.5
    a, b = NoisyLinearImputer(seed=3), NoisyLinearImputer(seed=3)
    assert torch.equal(a.impute(x, removed), b.impute(x, removed))
    assert not torch.equal(a.impute(x, removed), NoisyLinearImputer(noise_std=0.0).impute(x, removed))
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    m = PerturbationCurve(num_steps=4)
    m.update(model, x, torch.randn(2, 1, 6, 6), 0, 2, NoisyLinearImputer(noise_std=0.0))
    assert m.compute()["curve"].shape == (2, 5)


def test_unchanged_states_reuse_scores_without_forward_passes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    seen = []

    def counting(inp):
        seen.append(inp.shape[0])
        return net(inp)

    x = torch.rand(3, 1, 4, 4) * (torch.rand(3, 1, 4, 4) > 0.6)  # mostly black, like digits
    a = torch.randn(3, 1, 4, 4)
    results = []
    for skip in (True, False):
        seen.clear()
        m = PerturbationCurve(num_steps=None, features_per_step=1, skip_unchanged=skip)
        m.update(counting, x, a, 0, 1, ZeroReference())
        results.append((m.compute(), sum(seen)))
    (fast, n_fast), (full, n_full) = results
    assert n_full == 3 * 17 and n_fast == 3 + int((x != 0).sum())  # the start + one pass per non-black pixel
    for key, value in full.items():
        torch.testing.assert_close(fast[key], value, equal_nan=True)


class ThresholdModel(nn.Module):
    """logit_0 = sum of the pixels, logit_1 = a constant: the class flips at a known pixel count."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x):
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.full_like(total, self.threshold)], 1)


@pytest.fixture
def flat_images():
    # three 10x10 images of constant brightness alpha (exact binary fractions) and a random pixel ranking
    alpha = torch.tensor([1.0, 0.625, 0.875])
    x = alpha.view(-1, 1, 1, 1).expand(3, 1, 10, 10).clone()
    a = torch.randperm(300, generator=torch.Generator().manual_seed(0)).view(3, 1, 10, 10).float()
    return ThresholdModel(30.5), x, a


def test_deletion_flip_fraction_is_exact_at_single_pixels(flat_images):
    model, x, a = flat_images
    # after deleting k pixels, logit_0 = alpha (100 - k) < 30.5 first at k = 70, 52 and 66
    exact = PerturbationCurve(num_steps=20)
    exact.update(model, x, a, 0, 1, ZeroReference())
    assert exact.compute()["flip_fraction"].tolist() == pytest.approx([0.70, 0.52, 0.66])
    coarse = PerturbationCurve(num_steps=20, exact_flip=False)
    coarse.update(model, x, a, 0, 1, ZeroReference())
    assert coarse.compute()["flip_fraction"].tolist() == pytest.approx([0.70, 0.55, 0.70])
    # the 20-point curve for the AUC is unchanged by the refinement
    assert torch.equal(exact.compute()["curve"], coarse.compute()["curve"])


def test_insertion_flip_fraction_is_exact_and_costs_log_passes(flat_images):
    model, x, a = flat_images
    calls = []

    def counting(inp):
        calls.append(inp.shape[0])
        return model(inp)

    # restoring k pixels: alpha k > 30.5 first at k = 31, 49 and 35
    m = InsertionCurve(num_steps=20)
    m.update(counting, x, a, 0, 1, ZeroReference())
    assert m.compute()["flip_fraction"].tolist() == pytest.approx([0.31, 0.49, 0.35])
    # one pass for the curve, then one per halving of a 5-pixel bracket: ceil(log2 5) = 3
    assert len(calls) == 1 + 3
    assert InsertionCurve.output_directions["auc"] and not PerturbationCurve.output_directions["auc"]


def _cg_written_out(imputer: NoisyLinearImputer, z: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The conjugate-gradient loop written out (new tensors every step): the in-place one's reference."""
    nsum = imputer._neighbour_sum
    r = removed.to(z.dtype)
    weight = nsum(torch.ones_like(z[:1]))

    def apply(v, r):
        return r * (weight * v - nsum(v))

    b = r * nsum(z * (1.0 - r))
    start = (z * (1 - r)).sum((1, 2), keepdim=True) / (1 - r).sum((1, 2), keepdim=True).clamp_min(1)
    v = r * start
    res = b - apply(v, r)
    p, rr = res.clone(), (res * res).sum((1, 2), keepdim=True)
    stop = (imputer.tol * b.flatten(1).norm(dim=1).clamp_min(1.0)).view(-1, 1, 1) ** 2
    out, active = v.clone(), torch.arange(z.shape[0])
    for _ in range(imputer.max_iter):
        done = (rr <= stop).view(-1)
        if int(done.sum()) == done.numel():
            break
        if int(done.sum()) * 8 >= done.numel():
            out[active[done]] = v[done]
            active, v, res, p, rr, stop, r = (t[~done] for t in (active, v, res, p, rr, stop, r))
        ap = apply(p, r)
        pap = (p * ap).sum((1, 2), keepdim=True)
        alpha = torch.where(pap > 0, rr / pap.clamp_min(1e-30), torch.zeros_like(pap))
        v = v + alpha * p
        res = res - alpha * ap
        rr_new = (res * res).sum((1, 2), keepdim=True)
        p = res + torch.where(rr > 0, rr_new / rr.clamp_min(1e-30), torch.zeros_like(rr)) * p
        rr = rr_new
    out[active] = v
    return out


def test_in_place_conjugate_gradients_give_the_written_out_loop_to_the_bit():
    """ROAD's solver runs its iterations in preallocated buffers (1.2-1.5x faster per ROAD curve): every
    imputed pixel, and so every ROAD score, must be what the plain loop computes, not merely close."""
    torch.manual_seed(2)
    z = torch.rand(300, 28, 28)
    removed = torch.rand(300, 28, 28) < torch.rand(300, 1, 1)  # from nearly none to nearly all removed
    removed[:, 5, 5] = False  # every image keeps a known pixel, as impute() guarantees
    imputer = NoisyLinearImputer(noise_std=0.0)
    assert torch.equal(imputer._solve_cg(z, removed), _cg_written_out(imputer, z, removed))
