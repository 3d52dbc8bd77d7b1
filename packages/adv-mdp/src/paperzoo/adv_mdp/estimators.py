"""Loss estimators and exploration bonuses of the policy-optimisation learners (spec 3, steps 1-4, 6)."""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import check_positive

__all__ = ["bonus", "linear_q_estimate", "magnitude_reduced"]


def linear_q_estimate(
    features: Tensor, sigma_inv: Tensor, states: Tensor, actions: Tensor, losses: Tensor
) -> Tensor:
    r"""The linear Q estimate of one episode: :math:`\hat Q_h(s, a) = \langle\phi_h(s, a), \hat w_h\rangle`.

    :math:`\hat w_h = \Sigma^+_h \phi_h(s_h, a_h) L_h` with the cost-to-go
    :math:`L_h = \sum_{h' \ge h} \ell(s_{h'}, a_{h'})`. With the exact
    :math:`\Sigma^+ = (\gamma I + \Sigma)^{-1}` its mean is :math:`\phi^\top(\gamma I+\Sigma)^{-1}\Sigma w`.

    Args:
        features: ``(H, N, A, d)``. sigma_inv: ``(H, d, d)``. states, actions: ``(H,)`` int64;
            losses: ``(H,)`` observed along the path.

    Returns:
        ``Qhat (H, N, A)``.
    """
    H = features.shape[0]
    cost_to_go = losses.flip(0).cumsum(0).flip(0).to(features.dtype)  # L_h
    phi = features[torch.arange(H), states, actions]  # (H, d)
    w_hat = (sigma_inv @ phi.unsqueeze(-1)).squeeze(-1) * cost_to_go.unsqueeze(-1)  # (H, d)
    return (features @ w_hat.view(H, 1, -1, 1)).squeeze(-1)


def bonus(features: Tensor, sigma_inv: Tensor, policy: Tensor, beta: float) -> Tensor:
    r"""Luo et al. (2021)'s bonus :math:`b(s, a) = \beta(\|\phi(s,a)\|^2_{\Sigma^+} + \sum_{a'} \pi(a'|s)\|\phi(s,a')\|^2_{\Sigma^+})`.

    Args:
        features: ``(H, N, A, d)``. sigma_inv: ``(H, d, d)``. policy: ``(H, N, A)``. beta: ``>= 0``.

    Returns:
        ``b (H, N, A)``.

    Raises:
        ValueError: ``beta < 0``.
    """
    beta = check_positive("beta", beta, allow_zero=True)
    sq = ((features @ sigma_inv.unsqueeze(1)) * features).sum(-1)  # ||phi||^2_{Sig+}, (H, N, A)
    return beta * (sq + (policy * sq).sum(-1, keepdim=True))


def magnitude_reduced(q_hat: Tensor, eta: float) -> Tensor:
    r"""Alg 2's magnitude-reduced estimate (our reconstruction): :math:`\tilde Q = \max(\hat Q, -1/\eta)`.

    Exponential weights need only :math:`\eta\tilde Q \ge -1`; the clip's bias is one-sided and
    pointwise :math:`0 \le \tilde Q - \hat Q \le \eta\hat Q^2`. Deviation: the paper's Alg 2 text was
    not reachable (spec 6, VERIFY); it may add a correction term. Experimental.

    Args:
        q_hat: any shape. eta: the learner's rate ``> 0``.

    Returns:
        Same shape as ``q_hat``.

    Raises:
        ValueError: ``eta <= 0``.
    """
    eta = check_positive("eta", eta)
    return q_hat.clamp_min(-1.0 / eta)
