"""Fixed references that "remove" features in perturbation metrics, shared by all baselines for a fair
comparison (option (b) of issue 5). Option (a), the per-example baseline that produced the attribution, is
simply passed to the metric as a tensor.

Two kinds:
- an image reference, a callable `(x, source, target) -> Tensor` shaped like x, like a baseline
  (zero, constant, the input minimum = Quantus's "black", Gaussian blur);
- a mask imputer, whose value depends on which pixels are removed: `impute(x, removed) -> Tensor`
  (ROAD's noisy linear imputation, Rong et al. 2022).
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from ganmex.metrics.scoring import check_images
from ganmex.tensors import blur_radius, gaussian_blur


class ConstantReference:
    """Every pixel replaced by one value (0 is black in [0, 1] pixel space)."""

    def __init__(self, value: float = 0.0) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"constant reference value {value} is outside the [0, 1] pixel range")
        self.value = float(value)

    def __call__(self, x: Tensor, source: Tensor | None = None, target: Tensor | None = None) -> Tensor:
        return torch.full_like(check_images(x), self.value)


class ZeroReference(ConstantReference):
    """Black: the classic deletion reference."""

    def __init__(self) -> None:
        super().__init__(0.0)


class InputMinimumReference:
    """Each image's own minimum (Quantus's perturb_baseline="black"), equal to zero for most digits."""

    def __call__(self, x: Tensor, source: Tensor | None = None, target: Tensor | None = None) -> Tensor:
        lo = check_images(x).flatten(1).min(1).values
        return lo.view(-1, 1, 1, 1).expand_as(x).clone()


class BlurReference:
    """A Gaussian blur of the input (Fong & Vedaldi 2017): removes detail but keeps low-frequency content."""

    def __init__(self, sigma: float = 4.0, truncate: float = 3.0) -> None:
        if sigma <= 0:
            raise ValueError(f"blur sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.truncate = float(truncate)

    def __call__(self, x: Tensor, source: Tensor | None = None, target: Tensor | None = None) -> Tensor:
        h, w = check_images(x).shape[-2:]
        radius = blur_radius(self.sigma, h, w, self.truncate)
        return gaussian_blur(x, self.sigma, radius, padding="replicate")


# the 8-neighbourhood of ROAD's imputation: (row offset, column offset, weight)
NEIGHBOURS = tuple(
    (dr, dc, 1.0 / 6.0 if dr == 0 or dc == 0 else 1.0 / 12.0)
    for dr in (-1, 0, 1)
    for dc in (-1, 0, 1)
    if (dr, dc) != (0, 0)
)
SOLVERS = ("sparse", "cg")
COMPACT_EVERY = 8  # CG drops converged images once >= 1/8 of the active ones have converged


class NoisyLinearImputer:
    """ROAD's noisy linear imputation (Rong et al. 2022): each removed pixel becomes the weighted mean of its
    8 neighbours (direct 1/6, diagonal 1/12), solved jointly over all removed pixels, plus Gaussian noise.
    An image with every pixel removed is filled with its own mean.

    solver="cg" (default): batched conjugate gradients on the graph Laplacian restricted to the removed
    pixels, all on the input's device, each image stopped at |residual| <= tol * max(1, |rhs|) or max_iter;
    with `active_set` (default) converged images leave the batch, so the cost follows the mean iteration
    count, not the slowest image's (measured in docs/benchmarks.md).
    solver="sparse": the equations of every image of the batch as one block-diagonal sparse system,
    assembled with vectorised index arithmetic and solved by one direct sparse LU (scipy's SuperLU,
    natural order: banded blocks) on the CPU: exact, no tolerance, but slower than CG on 28x28 digits.
    """

    def __init__(
        self,
        noise_std: float = 0.01,
        max_iter: int = 300,
        tol: float = 1e-5,
        seed: int = 0,
        solver: str = "cg",
        active_set: bool = True,
    ) -> None:
        if noise_std < 0:
            raise ValueError(f"ROAD noise_std must be >= 0, got {noise_std}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown ROAD solver {solver!r}; choose one of {', '.join(SOLVERS)}")
        self.noise_std = float(noise_std)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.seed = int(seed)
        self.solver = solver
        self.active_set = bool(active_set)
        self._generator: torch.Generator | None = None
        self._stream_seed = self.seed

    def reset(self) -> None:
        self._generator = None
        self._stream_seed = self.seed

    def reseed(self, *key: object) -> None:
        """Restart the noise stream from (seed, *key): the evaluation keys it by (batch, method, baseline), so
        a unit's noise does not depend on which units ran before it, nor in which process."""
        text = "|".join(map(str, (self.seed, *key))).encode()
        self._stream_seed = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1
        self._generator = None

    def _noise(self, like: Tensor) -> Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device).manual_seed(self._stream_seed)
        return torch.randn(like.shape, generator=self._generator, device=like.device, dtype=like.dtype)

    @staticmethod
    def _neighbour_sum(v: Tensor) -> Tensor:
        """Weighted sum of each pixel's 8 neighbours (direct 1/6, diagonal 1/12), zero outside the image."""
        p = F.pad(v, (1, 1, 1, 1))
        direct = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
        diagonal = p[..., :-2, :-2] + p[..., :-2, 2:] + p[..., 2:, :-2] + p[..., 2:, 2:]
        return direct / 6.0 + diagonal / 12.0

    def impute(self, x: Tensor, removed: Tensor) -> Tensor:
        """x (N, C, H, W); removed (N, 1, H, W) or (N, C, H, W) bool, True where a pixel is removed."""
        n, c, h, w = check_images(x).shape
        if removed.shape[0] != n or removed.shape[-2:] != (h, w):
            raise ValueError(f"removed mask {tuple(removed.shape)} does not match images {tuple(x.shape)}")
        z = x.reshape(n * c, h, w).float()
        r_mask = removed.expand(n, c, h, w).reshape(n * c, h, w)
        # an image with no known pixel has a singular system: it takes its own mean instead
        everything = r_mask.flatten(1).all(1).view(-1, 1, 1)
        solve = self._solve_sparse if self.solver == "sparse" else self._solve_cg
        filled = solve(z, r_mask & ~everything)
        filled = torch.where(everything, z.mean((1, 2), keepdim=True), filled).to(x.dtype)
        if self.noise_std > 0:
            filled = filled + self.noise_std * self._noise(filled)
        out = torch.where(r_mask, filled, x.reshape(n * c, h, w)).clamp(0.0, 1.0)
        return out.reshape(n, c, h, w)

    def _solve_sparse(self, z: Tensor, r_mask: Tensor) -> Tensor:
        """(B, H, W) imputed values at the removed pixels (the rest is returned as z), one sparse LU.
        Every image must keep a known pixel (then each removed region touches one: the system is regular)."""
        import numpy as np
        import scipy.sparse
        import scipy.sparse.linalg

        b, h, w = z.shape
        zc = z.detach().cpu().double()
        solvable = r_mask.detach().cpu()
        flat = solvable.reshape(-1)
        unknown = torch.full((b * h * w,), -1, dtype=torch.long)
        count = int(flat.sum())
        unknown[flat] = torch.arange(count)
        out = zc.clone()
        if count:
            img, row, col = solvable.nonzero(as_tuple=True)
            me = unknown[(img * h + row) * w + col]
            diag = torch.zeros(count, dtype=torch.float64)
            rhs = torch.zeros(count, dtype=torch.float64)
            rows, cols, vals = [me], [me], []
            for dr, dc, weight in NEIGHBOURS:
                r2, c2 = row + dr, col + dc
                inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
                r2c, c2c = r2.clamp(0, h - 1), c2.clamp(0, w - 1)
                other = unknown[(img * h + r2c) * w + c2c]
                diag += weight * inside
                coupled = inside & (other >= 0)
                rows.append(me[coupled])
                cols.append(other[coupled])
                vals.append(torch.full((int(coupled.sum()),), -weight, dtype=torch.float64))
                known = inside & (other < 0)
                rhs += weight * known * zc[img, r2c, c2c]
            vals.insert(0, diag)
            matrix = scipy.sparse.csc_matrix(
                (torch.cat(vals).numpy(), (torch.cat(rows).numpy(), torch.cat(cols).numpy())),
                shape=(count, count),
            )
            # natural order: each image's block is banded (bandwidth W + 1), so LU fills only the band;
            # the matrix is diagonally dominant, so no pivoting is needed
            lu = scipy.sparse.linalg.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.0)
            solution = lu.solve(rhs.numpy())
            out[img, row, col] = torch.from_numpy(np.asarray(solution, dtype=np.float64))
        return out.to(device=z.device, dtype=z.dtype)

    def _solve_cg(self, z: Tensor, r_bool: Tensor) -> Tensor:
        """(B, H, W) imputed values by batched conjugate gradients on z's device (every image keeps a
        known pixel, as for the sparse solver). With `active_set`, images whose residual has converged
        leave the batch (once at least 1/COMPACT_EVERY of the remaining ones have), so the work follows
        the mean iteration count, not the slowest image's. The iterations run in place in a `_Workspace`
        (a 1024-image batch's temporaries are megabytes each: allocating them was a third of the time),
        with every operation in the same order as written out, so the results are the same to the bit."""
        r_mask = r_bool.to(z.dtype)
        k_mask = 1.0 - r_mask
        weight = self._neighbour_sum(torch.ones_like(z[:1]))  # fewer neighbours at the borders
        b = r_mask * self._neighbour_sum(z * k_mask)
        start = (z * k_mask).sum((1, 2), keepdim=True) / k_mask.sum((1, 2), keepdim=True).clamp_min(1)
        v = r_mask * start
        res = b - r_mask * (weight * v - self._neighbour_sum(v))  # b - A v
        p = res.clone()
        rr = (res * res).sum((1, 2), keepdim=True)
        stop = (self.tol * b.flatten(1).norm(dim=1).clamp_min(1.0)).view(-1, 1, 1) ** 2  # relative to |b|
        out = v.clone()
        active = torch.arange(z.shape[0], device=z.device)
        work = _Workspace(p)
        for _ in range(self.max_iter):
            done = (rr <= stop).view(-1)
            n_done = int(done.sum())
            if n_done == done.numel():
                break
            if self.active_set and n_done * COMPACT_EVERY >= done.numel():
                out[active[done]] = v[done]
                keep = ~done
                active, v, res, p, rr, stop, r_mask = (t[keep] for t in (active, v, res, p, rr, stop, r_mask))
                work = _Workspace(p)
            ap = work.apply(p, weight, r_mask)  # A p = r * (weight * p - neighbour_sum(p))
            pap = torch.mul(p, ap, out=work.product).sum((1, 2), keepdim=True)
            alpha = torch.where(pap > 0, rr / pap.clamp_min(1e-30), torch.zeros_like(pap))
            v.add_(torch.mul(alpha, p, out=work.product))  # v + alpha p
            res.sub_(torch.mul(alpha, ap, out=work.product))  # res - alpha A p
            rr_new = torch.mul(res, res, out=work.product).sum((1, 2), keepdim=True)
            beta = torch.where(rr > 0, rr_new / rr.clamp_min(1e-30), torch.zeros_like(rr))
            new_p = torch.mul(beta, p, out=work.spare).add_(res)  # res + beta p
            work.spare, p = p, new_p  # the old direction's memory takes the next one
            rr = rr_new
        out[active] = v
        return out


class _Workspace:
    """Preallocated buffers of one CG batch: the zero-bordered copy the 8-neighbour stencil reads, the
    stencil's two partial sums, A p, a product buffer and a spare for the next search direction."""

    def __init__(self, like: Tensor) -> None:
        n, h, w = like.shape
        self.padded = like.new_zeros(n, h + 2, w + 2)
        self.direct, self.diagonal, self.ap, self.product, self.spare = (
            torch.empty_like(like) for _ in range(5)
        )

    def apply(self, v: Tensor, weight: Tensor, r_mask: Tensor) -> Tensor:
        """r * (weight * v - neighbour_sum(v)), as NoisyLinearImputer._neighbour_sum adds it up."""
        p = self.padded
        p[:, 1:-1, 1:-1] = v
        direct = torch.add(p[:, :-2, 1:-1], p[:, 2:, 1:-1], out=self.direct)
        direct.add_(p[:, 1:-1, :-2]).add_(p[:, 1:-1, 2:])
        diagonal = torch.add(p[:, :-2, :-2], p[:, :-2, 2:], out=self.diagonal)
        diagonal.add_(p[:, 2:, :-2]).add_(p[:, 2:, 2:])
        neighbours = direct.div_(6.0).add_(diagonal.div_(12.0))
        return torch.mul(weight, v, out=self.ap).sub_(neighbours).mul_(r_mask)
