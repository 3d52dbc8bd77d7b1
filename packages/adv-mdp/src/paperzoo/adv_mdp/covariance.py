"""Inverse-covariance estimates for the linear Q estimator: exact, MGR, regularised empirical.

The estimator ``w_hat = Sig+ phi(s_h, a_h) L_h`` needs ``Sig+ ~ (gamma I + Sigma_h)^{-1}`` with
``Sigma_h = E_{s ~ q^pi_h}[sum_a pi(a|s) phi(s, a) phi(s, a)^T]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_positive, check_positive_int

__all__ = [
    "exact_covariance",
    "exact_inverse",
    "mgr_expectation",
    "mgr_inverse",
    "regularized_inverse",
]


def exact_covariance(features: Tensor, occupancy: Tensor, policy: Tensor) -> Tensor:
    """``Sigma_h = sum_s q_h(s) sum_a pi_h(a|s) phi phi^T``: ``(H, N, A, d), (H, N), (H, N, A) -> (H, d, d)``."""
    weights = (occupancy.unsqueeze(-1) * policy).flatten(1).unsqueeze(-1)  # (H, N*A, 1)
    flat = features.flatten(1, 2)  # (H, N*A, d)
    return (flat * weights).transpose(-1, -2) @ flat


def exact_inverse(sigma: Tensor, gamma: float) -> Tensor:
    """``(gamma I + Sigma)^{-1}`` of ``sigma (..., d, d)``; the Moore-Penrose pseudo-inverse at ``gamma = 0``.

    Raises:
        ValueError: ``gamma < 0``.
    """
    gamma = check_positive("gamma", gamma, allow_zero=True)
    if gamma == 0:
        out: Tensor = torch.linalg.pinv(sigma, hermitian=True)
        return out
    eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    inv: Tensor = torch.linalg.inv(sigma + gamma * eye)
    return inv


def _mgr_step(gamma: float, step: float | None) -> float:
    gamma = check_positive("gamma", gamma, allow_zero=True)
    c = 1.0 / (1.0 + gamma) if step is None else check_positive("step", step)
    if c * (1.0 + gamma) > 1.0 + 1e-12:
        raise ValueError(
            f"step: expected c * (1 + gamma) <= 1, got c = {c!r} with gamma = {gamma!r}"
        )
    return c


def mgr_inverse(features: Tensor, gamma: float, step: float | None = None) -> Tensor:
    r"""Matrix Geometric Resampling (Neu & Olkhovskaya 2020).

    :math:`\Sigma^+ = cI + c\sum_{i=1}^M \prod_{j=1}^i (I - c(\gamma I + \phi_j\phi_j^\top))` from
    ``M`` i.i.d. features; :math:`E[\Sigma^+] = (\gamma I+\Sigma)^{-1}(I - (I - c(\gamma I+\Sigma))^{M+1})`
    (:func:`mgr_expectation`) and every sample has operator norm at most :math:`1/\gamma`.
    The product is sequential in ``j`` (one rank-one update per sample, O(M d^2)).

    Args:
        features: ``(..., M, d)`` draws ``phi_j = phi(s_j, a_j)``, ``s_j ~ q^pi_h``, ``a_j ~ pi``;
            leading dims (e.g. layers) are independent estimates computed together.
        gamma: ridge ``gamma >= 0``. step: ``c`` (default ``1 / (1 + gamma)``).

    Returns:
        ``(..., d, d)`` (not symmetric in general: the factors do not commute).

    Raises:
        ValueError: ``M < 1``, ``gamma < 0``, ``step <= 0`` or ``c (1 + gamma) > 1``.
    """
    check_float_tensor("features", features)
    if features.dim() < 2 or features.shape[-2] < 1:
        raise ValueError(
            f"features: expected shape (..., M, d) with M >= 1, got {tuple(features.shape)}"
        )
    c = _mgr_step(gamma, step)
    d = features.shape[-1]
    eye = torch.eye(d, dtype=features.dtype, device=features.device)
    prod = eye.expand((*features.shape[:-2], d, d)).clone()
    total = torch.zeros_like(prod)
    shrink = 1.0 - c * gamma
    for j in range(features.shape[-2]):
        phi = features[..., j, :]
        # prod <- prod (I - c gamma I - c phi phi^T), a rank-one update
        prod = shrink * prod - c * (prod @ phi.unsqueeze(-1)) * phi.unsqueeze(-2)
        total = total + prod
    return c * eye + c * total


def mgr_expectation(sigma: Tensor, gamma: float, M: int, step: float | None = None) -> Tensor:
    """``E[mgr_inverse]``: ``(gamma I + Sigma)^{-1} (I - (I - c (gamma I + Sigma))^{M+1})`` for ``sigma (..., d, d)``.

    Raises:
        ValueError: as :func:`mgr_inverse`.
    """
    M = check_positive_int("M", M)
    c = _mgr_step(gamma, step)
    eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    reg = gamma * eye + sigma
    tail: Tensor = torch.linalg.matrix_power(eye - c * reg, M + 1)
    return exact_inverse(sigma, gamma) @ (eye - tail)


def regularized_inverse(features: Tensor, probs: Tensor, gamma: float) -> Tensor:
    r"""The inverse of a regularised empirical covariance, action-averaged (Dai et al., Sec. 6).

    :math:`\Sigma^+ = (\gamma I + \frac1M\sum_j \sum_a \pi(a|s_j) \phi(s_j, a)\phi(s_j, a)^\top)^{-1}`
    from an independent batch of ``M`` states. Deviation: the paper's exact sample size and any
    correction are unverified (paper body not reachable); this is the spec's form.

    Args:
        features: ``(..., M, A, d)`` features of the sampled states. probs: ``(..., M, A)`` the
            policy at those states. gamma: ridge ``>= 0`` (pseudo-inverse at 0).

    Returns:
        ``(..., d, d)``, symmetric.

    Raises:
        ValueError: ``M < 1``, mismatched shapes, ``gamma < 0``.
    """
    check_float_tensor("features", features)
    check_float_tensor("probs", probs)
    if features.dim() < 3 or features.shape[-3] < 1:
        raise ValueError(
            f"features: expected shape (..., M, A, d) with M >= 1, got {tuple(features.shape)}"
        )
    if probs.shape != features.shape[:-1]:
        raise ValueError(
            f"probs: expected shape {tuple(features.shape[:-1])} (features without d), "
            f"got {tuple(probs.shape)}"
        )
    sigma = (
        torch.einsum("...ma,...mad,...mae->...de", probs, features, features) / features.shape[-3]
    )
    return exact_inverse(sigma, gamma)
