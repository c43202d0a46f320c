"""Contrastive Explanation Method (CEM, Dhurandhar et al., NeurIPS 2018), batched over images.

For an image x0 the classifier labels t0, CEM finds

* a **pertinent negative** (PN): a sparse addition δ ≥ 0 such that x0 + δ is classified as another
  class with margin κ ("it is a 3 because this stroke is *missing*; with it, it would be a 5");
* a **pertinent positive** (PP): a sparse part δ of x0 (0 ≤ δ ≤ x0) that alone is still classified as
  t0 with margin κ ("these strokes are enough for a 3").

Objectives (Z = logits, AE = autoencoder, per image)::

    PN: c·max(Z_t0(x0+δ) − max_{i≠t0} Z_i(x0+δ), −κ) + β‖δ‖₁ + ‖δ‖₂² + γ‖x0+δ − AE(x0+δ)‖₂²
    PP: c·max(max_{i≠t0} Z_i(δ) − Z_t0(δ), −κ)       + β‖δ‖₁ + ‖δ‖₂² + γ‖δ − AE(δ)‖₂²

Optimisation (as in the paper / IBM's code, for a whole batch at once): the variable is an image v
("adv"); PN explains with v = x0 + δ, PP with δ = x0 − v. Each of `iterations` FISTA steps takes a
gradient step on the smooth part (attack + L2 + AE), shrinks v element-wise toward x0 by β
(`shrink`), projects onto the allowed side (`project`: PN v ∈ [x0, 1], PP v ∈ [0, x0]) and applies
momentum k/(k+3); the step size decays polynomially, lr·(1 − k/K)^power. Both v and the momentum
slack start at x0 (δ = 0). Around that, `n_searches` bisection steps over c per image: start at
`c_init`, ×10 after each failure until the first success, then bisect between the largest failing
and the smallest succeeding c (`update_c`). The kept solution is the iterate, over all searches, with
the smallest elastic-net distance β‖δ‖₁ + ‖δ‖₂² that meets the decision rule (`meets_rule`).

Fixed bugs of the public PyTorch reproduction: the L2 term is part of the differentiated loss; the
"max over other classes" masks the true class with −∞ (multiplying by a 0/1 mask returns 0 when all
other logits are negative); the slack starts at x0, not zeros; the c update is a real bisection.

Pixel range: the paper (and IBM's code) feed the classifier pixels in [−0.5, 0.5]; ours are in [0, 1]
(p_ours = p_paper + 0.5). The shift changes no difference, so δ, its norms, β, κ and the learning rate
mean the same thing; what the paper calls "absent" (the −0.5 background) is 0 here, which is why the
constraint sets are the plain boxes 0 ≤ x0 + δ ≤ 1 (PN) and 0 ≤ δ ≤ x0 (PP).

Colour: every constraint, norm and the shrinkage act per element, i.e. per pixel *and channel*; a PN
may brighten one channel of a pixel and a PP may keep part of its colour. Figures collapse channels
by the maximum |δ| (the evaluate mode `cem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torchmetrics import Metric
from tqdm.auto import tqdm

MODES = ("PN", "PP")
NO_UPPER_BOUND = 1e10


# -- the pieces, each testable on its own ---------------------------------------------------------
def shrink(z: torch.Tensor, x0: torch.Tensor, beta: float) -> torch.Tensor:
    """Element-wise shrinkage-thresholding of z toward x0: x0 + sign(z − x0)·max(|z − x0| − β, 0)."""
    diff = z - x0
    return x0 + torch.sign(diff) * (diff.abs() - beta).clamp_min(0.0)


def project(v: torch.Tensor, x0: torch.Tensor, mode: str) -> torch.Tensor:
    """Onto the allowed side: PN keeps v ∈ [x0, 1] (δ = v − x0 ≥ 0), PP v ∈ [0, x0] (0 ≤ x0 − v ≤ x0)."""
    check_mode(mode)
    if mode == "PN":
        return torch.minimum(torch.maximum(v, x0), torch.ones_like(v))
    return torch.maximum(torch.minimum(v, x0), torch.zeros_like(v))


def max_other(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max_{i ≠ label} logits_i per row; the label's entry is masked with −∞, so negative logits work."""
    if logits.shape[1] < 2:
        raise ValueError(f"CEM needs at least 2 classes, got logits of shape {tuple(logits.shape)}")
    own = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, labels.view(-1, 1), True)
    return logits.masked_fill(own, float("-inf")).amax(dim=1)


def margin(logits: torch.Tensor, labels: torch.Tensor, mode: str) -> torch.Tensor:
    """How far the decision rule is met: PN max_{i≠t0} Z_i − Z_t0, PP Z_t0 − max_{i≠t0} Z_i."""
    own = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    other = max_other(logits, labels)
    return other - own if mode == "PN" else own - other


def attack_loss(logits: torch.Tensor, labels: torch.Tensor, mode: str, kappa: float) -> torch.Tensor:
    """Per-image hinge max(−margin, −κ): zero gradient once the rule holds with margin κ."""
    return torch.clamp(-margin(logits, labels, mode), min=-kappa)


def meets_rule(logits: torch.Tensor, labels: torch.Tensor, mode: str, kappa: float) -> torch.Tensor:
    """PN: predicted class ≠ t0 with margin κ; PP: predicted class = t0 with margin κ."""
    predicted = logits.argmax(dim=1)
    changed = predicted != labels if mode == "PN" else predicted == labels
    return changed & (margin(logits, labels, mode) >= kappa)


def elastic_net(delta: torch.Tensor, beta: float) -> torch.Tensor:
    """β‖δ‖₁ + ‖δ‖₂² per image."""
    flat = delta.flatten(1)
    return beta * flat.abs().sum(1) + flat.pow(2).sum(1)


def update_c(
    c: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, success: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One bisection step on c per image (IBM's rule).

    success: upper = min(upper, c), c = (lower + upper) / 2.
    failure: lower = max(lower, c), c = (lower + upper) / 2 if an upper bound is known, else 10·c.
    """
    upper = torch.where(success, torch.minimum(upper, c), upper)
    lower = torch.where(success, lower, torch.maximum(lower, c))
    bounded = upper < NO_UPPER_BOUND
    c = torch.where(bounded, (lower + upper) / 2, torch.where(success, c, c * 10))
    return c, lower, upper


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(
            f"cem mode={mode!r} is not valid; choose one of: {', '.join(MODES)} (e.g. cem.mode=PN)"
        )


# -- the objective --------------------------------------------------------------------------------
def explained_input(v: torch.Tensor, x0: torch.Tensor, mode: str) -> torch.Tensor:
    """What the classifier sees: x0 + δ = v for PN, the kept part δ = x0 − v for PP."""
    return v if mode == "PN" else x0 - v


def cem_terms(
    v: torch.Tensor,
    x0: torch.Tensor,
    labels: torch.Tensor,
    classifier: nn.Module,
    autoencoder: nn.Module | None,
    mode: str,
    kappa: float,
) -> dict[str, torch.Tensor]:
    """Per-image loss terms at v: attack hinge, ‖δ‖₁, ‖δ‖₂², AE reconstruction error, and the logits."""
    delta = v - x0 if mode == "PN" else x0 - v
    seen = explained_input(v, x0, mode)
    logits = classifier(seen)
    terms = {
        "attack": attack_loss(logits, labels, mode, kappa),
        "l1": delta.flatten(1).abs().sum(1),
        "l2": delta.flatten(1).pow(2).sum(1),
        "logits": logits,
    }
    if autoencoder is not None:
        terms["ae"] = (seen - autoencoder(seen)).flatten(1).pow(2).sum(1)
    return terms


def smooth_loss(terms: dict[str, torch.Tensor], c: torch.Tensor, gamma: float) -> torch.Tensor:
    """The part FISTA differentiates: c·attack + ‖δ‖₂² + γ·AE (β‖δ‖₁ is handled by `shrink`)."""
    loss = c * terms["attack"] + terms["l2"]
    if "ae" in terms and gamma > 0:
        loss = loss + gamma * terms["ae"]
    return loss


# -- the solver -----------------------------------------------------------------------------------
@dataclass
class CEMResult:
    """One explanation per image. `delta` is the PN addition or the PP itself; `explanation` what the
    classifier saw (x0 + δ or δ). Invalid images (no iterate met the rule) hold the last iterate."""

    mode: str
    x0: torch.Tensor
    delta: torch.Tensor
    explanation: torch.Tensor
    original_class: torch.Tensor
    explained_class: torch.Tensor
    valid: torch.Tensor
    successes: torch.Tensor
    c: torch.Tensor
    extra: dict = field(default_factory=dict)

    @property
    def l1(self) -> torch.Tensor:
        return self.delta.flatten(1).abs().sum(1)

    @property
    def l2(self) -> torch.Tensor:
        return self.delta.flatten(1).pow(2).sum(1).sqrt()

    @property
    def l0(self) -> torch.Tensor:
        return (self.delta.flatten(1).abs() > 0).sum(1)


class ContrastiveExplainer:
    """Batched CEM for a frozen classifier on [0, 1] pixels (see the module docstring)."""

    def __init__(
        self,
        classifier: nn.Module,
        autoencoder: nn.Module | None = None,
        mode: str = "PN",
        kappa: float = 10.0,
        beta: float = 0.1,
        gamma: float = 1.0,
        c_init: float = 10.0,
        iterations: int = 1000,
        n_searches: int = 9,
        learning_rate: float = 0.01,
        lr_power: float = 0.5,
        batch_size: int = 256,
        progress: bool = True,
    ) -> None:
        check_mode(mode)
        for name, value in (("kappa", kappa), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"cem.{name}={value} must be >= 0")
        for name, value in (
            ("c_init", c_init), ("iterations", iterations), ("n_searches", n_searches),
            ("learning_rate", learning_rate), ("batch_size", batch_size),
        ):  # fmt: skip
            if value <= 0:
                raise ValueError(f"cem.{name}={value} must be > 0")
        if gamma > 0 and autoencoder is None:
            raise ValueError(
                f"cem.gamma={gamma} needs an autoencoder; train one with `autoencoder=conv_ae` "
                f"(or set cem.autoencoder=<artifact dir>), or set cem.gamma=0 to run without it"
            )
        self.classifier = classifier
        self.autoencoder = autoencoder if gamma > 0 else None
        self.mode = mode
        self.kappa, self.beta, self.gamma = float(kappa), float(beta), float(gamma)
        self.c_init, self.iterations, self.n_searches = float(c_init), int(iterations), int(n_searches)
        self.learning_rate, self.lr_power = float(learning_rate), float(lr_power)
        self.batch_size, self.progress = int(batch_size), progress

    def learning_rate_at(self, k: int) -> float:
        """Polynomial decay from `learning_rate` to 0 over the iterations of one search."""
        return self.learning_rate * (1.0 - k / self.iterations) ** self.lr_power

    def explain(self, x0: torch.Tensor, labels: torch.Tensor | None = None) -> CEMResult:
        """Explain a batch (N, C, H, W) in [0, 1]; labels default to the classifier's predictions."""
        if x0.dim() != 4:
            raise ValueError(f"CEM expects images shaped (N, C, H, W), got {tuple(x0.shape)}")
        if x0.min() < 0 or x0.max() > 1:
            raise ValueError(
                f"CEM expects pixels in [0, 1], got [{x0.min():.3f}, {x0.max():.3f}]; undo normalisation"
            )
        nets = [m for m in (self.classifier, self.autoencoder) if m is not None]
        was_training = [m.training for m in nets]
        for m in nets:
            m.eval()
        try:
            parts = [
                self._explain_batch(
                    x0[i : i + self.batch_size], None if labels is None else labels[i : i + self.batch_size]
                )
                for i in range(0, x0.shape[0], self.batch_size)
            ]
        finally:
            for m, flag in zip(nets, was_training, strict=True):
                m.train(flag)
        return _concat(parts)

    def _explain_batch(self, x0: torch.Tensor, labels: torch.Tensor | None) -> CEMResult:
        device = x0.device
        x0 = x0.detach().float()
        n = x0.shape[0]
        with torch.no_grad():
            if labels is None:
                labels = self.classifier(x0).argmax(1)
        labels = labels.to(device).long()
        c = torch.full((n,), self.c_init, device=device)
        lower = torch.zeros(n, device=device)
        upper = torch.full((n,), NO_UPPER_BOUND, device=device)
        best_dist = torch.full((n,), math.inf, device=device)
        best_v = x0.clone()
        last_v = x0.clone()
        successes = torch.zeros(n, dtype=torch.long, device=device)
        bar = tqdm(
            total=self.n_searches * self.iterations, disable=not self.progress, desc=f"CEM {self.mode}"
        )
        for _ in range(self.n_searches):
            found = torch.zeros(n, dtype=torch.bool, device=device)
            v = x0.clone()
            slack = x0.clone()
            for k in range(self.iterations):
                slack.requires_grad_(True)
                terms = cem_terms(slack, x0, labels, self.classifier, self.autoencoder, self.mode, self.kappa)
                grad = torch.autograd.grad(smooth_loss(terms, c, self.gamma).sum(), slack)[0]
                with torch.no_grad():
                    step = slack - self.learning_rate_at(k) * grad
                    v_new = project(shrink(step, x0, self.beta), x0, self.mode)
                    slack = project(v_new + k / (k + 3.0) * (v_new - v), x0, self.mode)
                    v = v_new
                    logits = self.classifier(explained_input(v, x0, self.mode))
                    ok = meets_rule(logits, labels, self.mode, self.kappa)
                    dist = elastic_net(v - x0, self.beta)
                    better = ok & (dist < best_dist)
                    best_dist = torch.where(better, dist, best_dist)
                    best_v[better] = v[better]
                    found |= ok
                bar.update(1)
            successes += found.long()
            last_v = v
            c, lower, upper = update_c(c, lower, upper, found)
        bar.close()
        valid = torch.isfinite(best_dist)
        final_v = torch.where(valid.view(-1, 1, 1, 1), best_v, last_v)
        delta = final_v - x0 if self.mode == "PN" else x0 - final_v
        explanation = explained_input(final_v, x0, self.mode)
        with torch.no_grad():
            explained_class = self.classifier(explanation).argmax(1)
        return CEMResult(
            self.mode, x0, delta, explanation, labels, explained_class, valid, successes, c,
            {"elastic_net": best_dist},
        )  # fmt: skip


def _concat(parts: list[CEMResult]) -> CEMResult:
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    names = ("x0", "delta", "explanation", "original_class", "explained_class", "valid", "successes", "c")
    extra = {k: torch.cat([p.extra[k] for p in parts]) for k in parts[0].extra}
    return CEMResult(parts[0].mode, *(cat(n) for n in names), extra)


# -- what the evaluation report shows -------------------------------------------------------------
def cem_scores(result: CEMResult) -> dict[str, float]:
    """Summary of a batch of CEM explanations, keyed `cem_<mode>/<name>`.

    validity: fraction meeting the decision rule; l1 / l2: mean ‖δ‖ over valid images;
    sparsity: mean fraction of untouched elements 1 − ‖δ‖₀/D over valid images (higher = sparser);
    flip_rate (PN): fraction whose explanation is classified as another class at all.
    """
    key = f"cem_{result.mode.lower()}"
    valid = result.valid
    d = result.delta[0].numel()
    chosen = valid if valid.any() else torch.zeros_like(valid)
    mean = lambda t: float(t[chosen].float().mean()) if chosen.any() else float("nan")  # noqa: E731
    scores = {
        f"{key}/validity": float(valid.float().mean()),
        f"{key}/l1": mean(result.l1),
        f"{key}/l2": mean(result.l2),
        f"{key}/sparsity": mean(1.0 - result.l0.float() / d),
        f"{key}/mean_successful_searches": float(result.successes.float().mean()),
    }
    if result.mode == "PN":
        scores[f"{key}/flip_rate"] = float((result.explained_class != result.original_class).float().mean())
    else:
        on = (result.x0.flatten(1) > 0).sum(1).clamp_min(1)
        scores[f"{key}/kept_fraction"] = mean(result.l0.float() / on)
    return scores


class CEMScores(Metric):
    """`cem_scores` accumulated over batches (and devices): update with each batch's CEMResult."""

    full_state_update = False

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        check_mode(mode)
        self.mode = mode
        for name in ("n", "valid", "flips", "l1", "l2", "sparsity"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, result: CEMResult) -> None:
        if result.mode != self.mode:
            raise ValueError(f"CEMScores(mode={self.mode!r}) got a {result.mode} result")
        valid = result.valid
        self.n += valid.numel()
        self.valid += valid.sum()
        self.flips += (result.explained_class != result.original_class).sum()
        self.l1 += result.l1[valid].double().sum()
        self.l2 += result.l2[valid].double().sum()
        self.sparsity += (1.0 - result.l0[valid].double() / result.delta[0].numel()).sum()

    def compute(self) -> dict[str, torch.Tensor]:
        key = f"cem_{self.mode.lower()}"
        per_valid = lambda t: t / self.valid if self.valid > 0 else torch.tensor(float("nan"))  # noqa: E731
        scores = {
            f"{key}/validity": self.valid / self.n,
            f"{key}/l1": per_valid(self.l1),
            f"{key}/l2": per_valid(self.l2),
            f"{key}/sparsity": per_valid(self.sparsity),
        }
        if self.mode == "PN":
            scores[f"{key}/flip_rate"] = self.flips / self.n
        return scores


def evaluate_cem(
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    autoencoder: nn.Module | None = None,
    modes: tuple[str, ...] = MODES,
    **settings,
) -> dict[str, float]:
    """Run CEM in each mode on a batch and return `cem_scores` of all of them (for the evaluation report)."""
    scores: dict[str, float] = {}
    for mode in modes:
        explainer = ContrastiveExplainer(classifier, autoencoder, mode=mode, **settings)
        scores.update(cem_scores(explainer.explain(images, labels)))
    return scores
