"""``shift_estimate``: how far the unlabeled feature cloud is from the labeled one (alpha).

The debiased entropic (Sinkhorn) estimate of the 2-Wasserstein distance between the empirical
distributions of two point clouds: ``S = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2`` of the
squared-Euclidean transport cost, reported as ``sqrt(max(S, 0))``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

__all__ = ["shift_estimate"]


def _ot_cost(a: Tensor, b: Tensor, eps: float, iters: int) -> Tensor:
    """Transport cost ``<P, C>`` of the entropic plan between uniform clouds (log domain)."""
    c = torch.cdist(a, b).square()
    la, lb = -math.log(a.shape[0]), -math.log(b.shape[0])
    f = torch.zeros(a.shape[0], dtype=a.dtype)
    g = torch.zeros(b.shape[0], dtype=a.dtype)
    for _ in range(iters):
        f = -eps * torch.logsumexp((g[None, :] - c) / eps + lb, dim=1)
        g = -eps * torch.logsumexp((f[:, None] - c) / eps + la, dim=0)
    plan = torch.exp((f[:, None] + g[None, :] - c) / eps + la + lb)
    return (plan * c).sum()


def shift_estimate(
    x_l: Tensor,
    x_u: Tensor,
    *,
    reg: float = 0.05,
    iters: int = 200,
    max_points: int = 1000,
    seed: int = 0,
) -> float:
    """Debiased Sinkhorn estimate of ``W2(P_{0,X}, P_{1,X})`` from feature clouds.

    Args:
        x_l: labeled features ``(m, F)``.
        x_u: unlabeled features ``(n, F)``.
        reg: entropic regularisation relative to the mean squared distance.
        iters: Sinkhorn iterations.
        max_points: each cloud is subsampled (seeded) to at most this many rows.
        seed: subsampling seed.

    Returns:
        The estimate (same units as the features); near 0 for clouds from one distribution.
        Computed in float64 on the CPU.
    """
    for name, x in (("x_l", x_l), ("x_u", x_u)):
        check_float_tensor(name, x, ndim=2, nonempty=True)
        check_finite(name, x)
    if x_l.shape[1] != x_u.shape[1]:
        raise ValueError(f"x_u: expected {x_l.shape[1]} features (like x_l), got {x_u.shape[1]}")
    r = check_positive("reg", reg)
    it = check_positive_int("iters", iters)
    k = check_positive_int("max_points", max_points)
    g = torch.Generator().manual_seed(seed)

    def sub(x: Tensor) -> Tensor:
        x = x.detach().double().cpu()
        return x[torch.randperm(x.shape[0], generator=g)[:k]] if x.shape[0] > k else x

    a, b = sub(x_l), sub(x_u)
    eps = r * max(float(torch.cdist(a, b).square().mean()), 1e-12)  # one eps for all three terms
    s = _ot_cost(a, b, eps, it) - 0.5 * (_ot_cost(a, a, eps, it) + _ot_cost(b, b, eps, it))
    return math.sqrt(max(float(s), 0.0))
