r"""The two-Gaussian theory (paper Sec. 4, poster Thm 4.1 / 4.2) as functions.

Model: ``P0``: ``y = +-1``, ``x | y ~ N(y mu0, sigma0^2 I_d)``; unlabeled ``P_{1,X}`` with
``||mu1 - mu0|| = O(alpha)``. The error of ``sign(theta . x)`` is
``R(theta) = Phi(-<theta, mu0> / (sigma0 ||theta||))`` and the Bayes error
``Phi(-||mu0|| / sigma0)``. The bounds are the theorems' expressions with every constant hidden
in ``O()`` set to 1 (the constants are not given: use them for rates and trends, not values).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_positive, check_unit_interval

__all__ = ["bayes_error", "erm_rate", "linear_error", "thm41_rhs", "thm42_rhs"]


def linear_error(theta: Tensor, mu0: Tensor, sigma0: float = 1.0) -> Tensor:
    """Test error ``Phi(-<theta, mu0> / (sigma0 ||theta||))`` of ``sign(theta . x)`` under ``P0``.

    Args:
        theta: ``(d,)`` or a batch ``(k, d)`` of weight vectors (non-zero).
        mu0: ``(d,)`` class mean.
        sigma0: noise scale.

    Returns:
        A 0-D tensor, or ``(k,)``; invariant to positive scaling of ``theta``.
    """
    check_float_tensor("theta", theta)
    check_float_tensor("mu0", mu0, ndim=1)
    if theta.shape[-1] != mu0.shape[0] or theta.dim() > 2:
        raise ValueError(
            f"theta: expected (d,) or (k, d) with d = {mu0.shape[0]}, got {tuple(theta.shape)}"
        )
    s = check_positive("sigma0", sigma0)
    t = theta.double()
    cos = (t @ mu0.double()) / (s * t.norm(dim=-1))
    out: Tensor = torch.special.ndtr(-cos).to(theta.dtype)
    return out


def bayes_error(mu0_norm: float, sigma0: float = 1.0) -> float:
    """``Phi(-||mu0|| / sigma0)``: the error of ``sign(mu0 . x)``."""
    r = check_positive("mu0_norm", mu0_norm, allow_zero=True) / check_positive("sigma0", sigma0)
    return 0.5 * math.erfc(r / math.sqrt(2))


def erm_rate(d: float, m: float) -> float:
    """The labeled-only ERM rate ``sqrt(d / m)``."""
    return math.sqrt(check_positive("d", d) / check_positive("m", m))


def _conf(delta: float, m: float) -> float:
    dl = check_unit_interval("delta", delta, open_=True)
    return math.sqrt(2 * math.log(1 / dl) / m)


def thm41_rhs(
    d: float,
    m: float,
    n: float,
    alpha: float,
    mu0_norm: float = 1.0,
    sigma0: float = 1.0,
    gamma: float = 1.0,
    delta: float = 0.05,
) -> float:
    r"""Thm 4.1 (robust loss) right-hand side with O-constants 1:

    ``gamma sqrt((2d/m)(alpha(||mu0||^2 + sigma0^2) + sqrt(2d/(2n+m)) + sqrt(2 log(1/delta)/(2n+m))))
    + sqrt(2 log(1/delta)/m)``, a bound on ``E phi_gamma(theta_RSS) - min E phi_gamma``.
    """
    d, m = check_positive("d", d), check_positive("m", m)
    n = check_positive("n", n, allow_zero=True)
    a = check_positive("alpha", alpha, allow_zero=True)
    g = check_positive("gamma", gamma)
    s2 = check_positive("sigma0", sigma0) ** 2
    mu2 = check_positive("mu0_norm", mu0_norm, allow_zero=True) ** 2
    tot = 2 * n + m
    inner = a * (mu2 + s2) + math.sqrt(2 * d / tot) + math.sqrt(2 * math.log(1 / delta) / tot)
    return g * math.sqrt(2 * d / m * inner) + _conf(delta, m)


def thm42_rhs(
    d: float,
    m: float,
    n: float,
    alpha: float,
    mu0_norm: float = 1.0,
    sigma0: float = 1.0,
    mu1_norm: float | None = None,
    sigma1: float | None = None,
    delta: float = 0.05,
) -> float:
    r"""Thm 4.2 (non-robust 0-1 excess risk) right-hand side with O-constants 1:

    ``e^{-||mu0||^2/(4 sigma0^2)} / sqrt(2 sigma0 sqrt(2 pi)) * ((||mu1||^2 + sigma1^2)(2 d alpha/m)
    + (4d/m) sqrt((2d + 2 log(1/delta))/(2n+m)))^{1/4} + sqrt(2 log(1/delta)/m)``.

    ``mu1_norm`` and ``sigma1`` default to ``mu0_norm`` and ``sigma0``. As ``n -> inf`` at
    ``alpha = 0`` the first term vanishes only like ``n^{-1/8}``.
    """
    d, m = check_positive("d", d), check_positive("m", m)
    n = check_positive("n", n, allow_zero=True)
    a = check_positive("alpha", alpha, allow_zero=True)
    s0 = check_positive("sigma0", sigma0)
    mu0 = check_positive("mu0_norm", mu0_norm, allow_zero=True)
    mu1 = mu0 if mu1_norm is None else check_positive("mu1_norm", mu1_norm, allow_zero=True)
    s1 = s0 if sigma1 is None else check_positive("sigma1", sigma1)
    lead = math.exp(-(mu0**2) / (4 * s0**2)) / math.sqrt(2 * s0 * math.sqrt(2 * math.pi))
    inner = (mu1**2 + s1**2) * (2 * d * a / m) + (4 * d / m) * math.sqrt(
        (2 * d + 2 * math.log(1 / delta)) / (2 * n + m)
    )
    return float(lead * inner**0.25 + _conf(delta, m))
