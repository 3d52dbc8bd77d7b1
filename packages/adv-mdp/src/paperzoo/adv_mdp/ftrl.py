"""FTRL over the action simplex at every state: the log-barrier step of Alg 1 and Hedge.

Both take cumulative loss estimates ``G (..., A)`` (leading dims: states, layers, anything) and a
learning rate ``eta`` and return the FTRL distribution ``argmin_p <p, G> + R(p) / eta`` of each row.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

__all__ = ["hedge", "log_barrier"]


def _check(G: Tensor, eta: float, validate: bool) -> float:
    check_float_tensor("G", G)
    if G.dim() < 1:
        raise ValueError("G: expected shape (..., A), got a 0-D tensor")
    if G.shape[-1] < 2:
        warnings.warn(f"G: A = {G.shape[-1]} action(s): the policy is trivial", stacklevel=3)
    check_finite("G", G, validate=validate)
    return check_positive("eta", eta)


def log_barrier(
    G: Tensor,
    eta: float,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
    validate: bool = True,
) -> Tensor:
    r"""Log-barrier FTRL: :math:`p = \arg\min_{p \in \Delta_A} \langle p, G\rangle + \frac1\eta \sum_a \ln\frac1{p_a}`.

    KKT: :math:`p_a = 1 / (\eta (G_a + \lambda))` with the unique :math:`\lambda` making
    :math:`\sum_a p_a = 1`. With :math:`g = G - \min G \ge 0` and :math:`x = \eta\lambda`, the root of
    :math:`f(x) = \sum_a 1/(\eta g_a + x) - 1` lies in :math:`(1, A]`; ``f`` is convex and decreasing,
    so Newton's method started at the left end :math:`x = 1` (where :math:`f \ge 0`) increases
    monotonically to the root without overshooting. Rows still off by more than ``tol`` after
    ``max_iter`` steps (never seen; a safeguard) are finished by bisection on :math:`[1, A]`. All rows
    are solved together in float64; the result is renormalised to sum to 1.

    Args:
        G: cumulative losses ``(..., A)``; any real values (very negative ones included: the
            log-barrier needs no lower bound on the loss estimates).
        eta: learning rate ``eta > 0``.
        tol: stop when every row has ``|sum_a p_a - 1| < tol``. max_iter: Newton steps at most.
        validate: check ``G`` for NaN/inf (one host sync).

    Returns:
        ``(..., A)`` probabilities, ``G``'s dtype. Shift-invariant in ``G``; ``p(G, eta) = p(cG, eta/c)``.

    Raises:
        TypeError: ``G`` is not a float tensor. ValueError: ``eta <= 0``, non-finite ``G``.
    """
    eta = _check(G, eta, validate)
    max_iter = check_positive_int("max_iter", max_iter)
    A = G.shape[-1]
    g = G.to(torch.float64)
    g = eta * (g - g.min(-1, keepdim=True).values)  # eta * (G - min G) >= 0
    x = torch.ones((*g.shape[:-1], 1), dtype=torch.float64, device=G.device)
    for it in range(max_iter):
        inv = 1.0 / (g + x)
        f = inv.sum(-1, keepdim=True) - 1.0
        # Newton from x = 1 needs >= 3 steps unless f is already 0 (then a step is a no-op), so
        # the convergence check (a host sync) starts at the third step
        if it >= 2 and float(f.abs().max()) < tol:
            break
        x = (x + f / (inv * inv).sum(-1, keepdim=True)).clamp(1.0, float(A))
    else:
        lo = torch.ones_like(x)
        hi = torch.full_like(x, float(A))
        for _ in range(200):  # bisection safeguard: f(lo) >= 0 >= f(hi)
            mid = (lo + hi) / 2
            pos = (1.0 / (g + mid)).sum(-1, keepdim=True) > 1.0
            lo, hi = torch.where(pos, mid, lo), torch.where(pos, hi, mid)
        x = (lo + hi) / 2
    p = 1.0 / (g + x)
    return (p / p.sum(-1, keepdim=True)).to(G.dtype)


def hedge(G: Tensor, eta: float, *, validate: bool = True) -> Tensor:
    r"""Exponential weights: :math:`p = \mathrm{softmax}(-\eta G)` over the last dim (negative entropy FTRL).

    Args:
        G: cumulative losses ``(..., A)``. eta: learning rate ``> 0``. validate: NaN/inf check.

    Returns:
        ``(..., A)`` probabilities (log-sum-exp stable).

    Raises:
        TypeError: ``G`` is not a float tensor. ValueError: ``eta <= 0``, non-finite ``G``.
    """
    eta = _check(G, eta, validate)
    return torch.softmax(-eta * G, dim=-1)
