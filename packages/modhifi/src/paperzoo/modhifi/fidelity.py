"""Subset Fidelity on a component similarity matrix (paper Section 3): the architecture-free core.

A layer's output channel ``c`` is a sum of per-input-channel contributions ``Y_c = sum_i A_ci``.
Everything the method needs about channel ``c`` is its component similarity matrix (CSM)
``Q_c[i, j] = E<A_ci, A_cj>`` ``(n, n)`` (PSD), because ``E<Y_c, A_ci> = (Q_c 1)_i`` and
``E||Y_c||^2 = 1'Q_c 1``. Every function here takes ``Q`` with any leading batch dimensions
``(..., n, n)`` (one CSM per output channel) and works in the dtype it is given; callers pass
float64 for exact comparisons.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.checks import check_choice, check_float_tensor, check_positive

__all__ = [
    "RidgeMode",
    "compensation",
    "csm_from_contributions",
    "reconstruction_fidelity",
    "saliency",
    "singleton_fidelity",
    "subset_fidelity",
]

RidgeMode = Literal["absolute", "relative"]
"""``"absolute"``: add ``ridge`` to the diagonal (paper); ``"relative"``: add ``ridge * mean(diag Q)``."""


def _check_q(q: object) -> Tensor:
    t = check_float_tensor("Q", q)
    if t.dim() < 2 or t.shape[-1] != t.shape[-2]:
        raise ValueError(f"Q: expected a (..., n, n) tensor, got shape {tuple(t.shape)}")
    if t.shape[-1] == 0:
        raise ValueError("Q: expected at least one component (n >= 1), got n = 0")
    return t


def _warn_zero_outputs(ok: Tensor) -> None:
    if not bool(ok.all()):
        warnings.warn(
            "an output channel has E||Y_c||^2 = 0: its fidelity is undefined, set to 0",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_keep(keep: object, q: Tensor) -> Tensor:
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool:
        got = keep.dtype if isinstance(keep, Tensor) else type(keep).__name__
        raise TypeError(f"keep: expected a bool tensor, got {got}")
    try:
        torch.broadcast_shapes(keep.shape, q.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"keep: expected a shape broadcastable to {tuple(q.shape[:-1])}, got {tuple(keep.shape)}"
        ) from None
    return keep


def csm_from_contributions(contributions: Tensor, *, center: bool = False) -> Tensor:
    """The component similarity matrix of explicit contributions.

    ``Q[i, j] = (1/S) sum_s <A_si, A_sj>``, the inner product summing over positions ``P``
    (spatial positions of a conv map, tokens of a Linear layer).

    Args:
        contributions: ``A`` ``(S, n, P)``: sample ``s``'s contribution of input channel ``i``.
        center: subtract the sample mean of each contribution map first (the paper's BN-centred
            ``Q~ = E<A_i, A_j> - <E A_i, E A_j>``).

    Returns:
        ``Q`` ``(n, n)``, symmetric positive semi-definite.

    Raises:
        TypeError: not a floating tensor; ValueError: not 3-D, or no samples.
    """
    a = check_float_tensor("contributions", contributions, ndim=3, nonempty=True)
    if center:
        a = a - a.mean(dim=0, keepdim=True)
    return torch.einsum("sip,sjp->ij", a, a) / a.shape[0]


def saliency(q: Tensor) -> Tensor:
    """The paper's vision ranking score ``R_i = E<Y, A_i> = (Q 1)_i`` (App. D.2), ``(..., n)``.

    Equal to ``alpha_i E||A_i||^2`` with the optimal singleton scale ``alpha_i``.
    """
    return _check_q(q).sum(dim=-1)


def singleton_fidelity(q: Tensor) -> Tensor:
    """Exact singleton fidelity ``s_i = FS({i}) = (E<Y, A_i>)^2 / (E||A_i||^2 E||Y||^2)``, ``(..., n)``.

    A component with no energy (``Q_ii = 0``) or an output with no energy (``1'Q1 = 0``) has
    fidelity 0 (the paper leaves it undefined; a warning is logged for the latter).
    """
    q = _check_q(q)
    r = q.sum(dim=-1)
    energy = torch.diagonal(q, dim1=-2, dim2=-1)
    y = r.sum(dim=-1, keepdim=True)
    _warn_zero_outputs(y > 0)
    den = energy * y
    ok = den > 0
    return torch.where(ok, r.square() / torch.where(ok, den, torch.ones_like(den)), 0.0)


def _ridge_value(q_cc_diag: Tensor, keep: Tensor, ridge: float, mode: RidgeMode) -> Tensor:
    if mode == "absolute":
        return torch.full_like(q_cc_diag[..., :1], ridge)
    kept = keep.to(q_cc_diag.dtype)
    mean = (q_cc_diag * kept).sum(-1, keepdim=True) / kept.sum(-1, keepdim=True).clamp_min(1)
    return ridge * mean


def compensation(
    q: Tensor, keep: Tensor, ridge: float = 1e-4, ridge_mode: RidgeMode = "absolute"
) -> Tensor:
    """Optimal rescaling of the kept components (Prop. 3.8), ``delta`` ``(..., n)``.

    ``delta_C = 1 + (Q[C, C] + lambda I)^{-1} Q[C, Cbar] 1`` and ``delta_Cbar = 0``: the normal
    equations of ``min_delta E||Y - sum_{i in C} delta_i A_i||^2`` (exact with ``ridge=0``).
    Written in this form the ridge only damps the correction, so keeping everything gives
    ``delta = 1`` whatever ``ridge`` is. Solved by a batched Cholesky factorisation over all
    leading dimensions: dropped rows become identity rows with a zero right-hand side.

    Args:
        q: ``Q`` ``(..., n, n)`` (float64 recommended).
        keep: bool ``(..., n)`` (broadcastable), the subset ``C``.
        ridge: ``lambda >= 0`` (paper: ``1e-4``, absolute).
        ridge_mode: ``"absolute"`` (paper) or ``"relative"`` (``lambda * mean diag Q[C, C]``,
            for networks whose activations are far from unit scale).

    Returns:
        ``delta`` ``(..., n)``, zero outside ``C``.

    Raises:
        TypeError: ``keep`` not a bool tensor; ValueError: a negative ridge, or a singular
            ``Q[C, C]`` with ``ridge=0`` (add a ridge).
    """
    q = _check_q(q)
    keep = _check_keep(keep, q)
    lam = check_positive("ridge", ridge, allow_zero=True)
    check_choice("ridge_mode", ridge_mode, ("absolute", "relative"))
    shape = torch.broadcast_shapes(keep.shape, q.shape[:-1])
    keep = keep.expand(shape)
    q = q.expand(*shape, shape[-1])
    k = keep.to(q.dtype)
    drop = 1.0 - k
    diag = torch.diagonal(q, dim1=-2, dim2=-1)
    lam_t = _ridge_value(diag, keep, lam, ridge_mode)
    m = q * k.unsqueeze(-1) * k.unsqueeze(-2)
    m = m + torch.diag_embed(lam_t * k + drop)
    rhs = k * (q @ drop.unsqueeze(-1)).squeeze(-1)
    chol, info = torch.linalg.cholesky_ex(m)
    if bool((info != 0).any()):
        raise ValueError(
            f"ridge: Q[C, C] is singular (not positive definite) with ridge={ridge}; "
            "use ridge > 0 (the paper uses 1e-4)"
        )
    sol = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    return k * (1.0 + sol)


def reconstruction_fidelity(q: Tensor, delta: Tensor) -> Tensor:
    """``1 - E||Y - sum_i delta_i A_i||^2 / E||Y||^2`` for given scales ``delta`` ``(..., n)``, ``(...)``.

    The residual is ``1'Q1 - 2 delta'Q1 + delta'Q delta``; an output with ``1'Q1 = 0`` gets 0
    (with a warning).
    """
    q = _check_q(q)
    delta = check_float_tensor("delta", delta)
    y = q.sum(dim=(-1, -2))
    b = q.sum(dim=-1)
    qd = (q @ delta.unsqueeze(-1)).squeeze(-1)
    resid = y - 2.0 * (delta * b).sum(-1) + (delta * qd).sum(-1)
    ok = y > 0
    _warn_zero_outputs(ok)
    return torch.where(ok, 1.0 - resid / torch.where(ok, y, torch.ones_like(y)), 0.0)


def subset_fidelity(
    q: Tensor, keep: Tensor, ridge: float = 0.0, ridge_mode: RidgeMode = "absolute"
) -> Tensor:
    """Subset Fidelity ``FS(C) = max_delta 1 - E||Y - sum_{i in C} delta_i A_i||^2 / E||Y||^2``, ``(...)``.

    In ``[0, 1]`` and monotone in ``C`` (exactly so with ``ridge=0``); ``FS({}) = 0`` and
    ``FS(all) = 1``. With ``ridge > 0`` it is the fidelity reached by the ridge-damped
    :func:`compensation` (a lower bound of the exact value).

    Args:
        q: ``Q`` ``(..., n, n)``; keep: bool ``(..., n)``; ridge, ridge_mode: as in
            :func:`compensation` (default 0: the exact maximum).

    Raises:
        ValueError: ``ridge=0`` with a singular ``Q[C, C]``.
    """
    delta = compensation(q, keep, ridge=ridge, ridge_mode=ridge_mode)
    return reconstruction_fidelity(q, delta)
