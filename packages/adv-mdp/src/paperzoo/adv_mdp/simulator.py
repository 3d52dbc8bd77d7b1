"""The simulator of the paper's setting: covariance and dilated-bonus estimates for a policy.

``mode="exact"`` computes them from occupancy measures and backward DP (our environments are
enumerable); ``mode="sample"`` uses only rollouts, as the paper's simulator does: ``n_cov`` rollouts
per covariance estimate (MGR or the regularised inverse) and ``n_bonus`` rollouts from every
``(h, s, a)`` for the dilated bonus (Luo et al. 2021).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from paperzoo.adv_mdp.covariance import (
    exact_covariance,
    exact_inverse,
    mgr_inverse,
    regularized_inverse,
)
from paperzoo.adv_mdp.envs import LinearMDP
from paperzoo.core.checks import check_choice, check_positive, check_positive_int

__all__ = ["Simulator"]


def _draw(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One index per row of ``probs (..., K)``."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


class Simulator:
    """Covariance inverses and dilated bonuses of a policy, exactly or from rollouts.

    Args:
        env: the MDP. mode: ``"exact"`` or ``"sample"``. n_cov: ``M``, rollouts per covariance
            estimate (sample mode). n_bonus: ``N``, rollouts per ``(h, s, a)`` for the bonus
            (sample mode). inverse: ``"mgr"`` (Luo et al.; a fresh MGR per estimate) or
            ``"regularized"`` (Dai et al.'s action-averaged regularised inverse). seed: the rollouts'.

    Raises:
        ValueError: unknown mode/inverse, ``n_cov < 1`` or ``n_bonus < 1``.
    """

    def __init__(
        self,
        env: LinearMDP,
        mode: Literal["exact", "sample"] = "exact",
        n_cov: int = 100,
        n_bonus: int = 20,
        inverse: Literal["mgr", "regularized"] = "mgr",
        seed: int = 0,
    ) -> None:
        self.env = env
        self.mode = check_choice("mode", mode, ("exact", "sample"))
        self.inverse = check_choice("inverse", inverse, ("mgr", "regularized"))
        self.n_cov = check_positive_int("n_cov", n_cov)
        self.n_bonus = check_positive_int("n_bonus", n_bonus)
        self.generator = torch.Generator().manual_seed(seed)

    def sample_states(self, policy: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """``n`` independent rollouts of ``policy``: ``(states (H, n), actions (H, n))``."""
        env = self.env
        states = torch.zeros(env.H, n, dtype=torch.long)
        actions = torch.zeros(env.H, n, dtype=torch.long)
        s = torch.zeros(n, dtype=torch.long)
        for h in range(env.H):
            states[h] = s
            actions[h] = _draw(policy[h, s], self.generator)
            if h < env.H - 1:
                s = _draw(env.transitions[h, s, actions[h]], self.generator)
        return states, actions

    def covariance_inverse(self, policy: Tensor, gamma: float) -> Tensor:
        """``Sig+_h ~ (gamma I + Sigma_h)^{-1}`` for every layer: ``(H, d, d)``."""
        env = self.env
        gamma = check_positive("gamma", gamma, allow_zero=True)
        if self.mode == "exact":
            occ = env.occupancy(policy, validate=False)
            return exact_inverse(exact_covariance(env.features, occ, policy), gamma)
        states, actions = self.sample_states(policy, self.n_cov)
        layer = torch.arange(env.H).unsqueeze(-1)
        if self.inverse == "mgr":
            return mgr_inverse(
                env.features[layer, states, actions], gamma
            )  # (H, M, d) -> (H, d, d)
        return regularized_inverse(env.features[layer, states], policy[layer, states], gamma)

    def dilated_bonus(self, policy: Tensor, b: Tensor) -> Tensor:
        """``B_h(s, a) = b_h(s, a) + (1 + 1/H) E[B_{h+1}(s', a')]`` (``B = 0`` past ``H-1``): ``(H, N, A)``."""
        if self.mode == "exact":
            env = self.env
            out = torch.empty_like(b)
            out[-1] = b[-1]
            for h in range(env.H - 2, -1, -1):
                v_next = (policy[h + 1] * out[h + 1]).sum(-1)
                out[h] = b[h] + (1 + 1 / env.H) * torch.einsum(
                    "sat,t->sa", env.transitions[h], v_next
                )
            return out
        return self.bonus_samples(policy, b, self.n_bonus).mean(0)

    def bonus_samples(self, policy: Tensor, b: Tensor, n: int) -> Tensor:
        """``n`` Monte-Carlo returns of the dilated bonus from every ``(h, s, a)``: ``(n, H, N, A)``.

        Each is ``sum_{j >= 0} (1 + 1/H)^j b_{h+j}(s_{h+j}, a_{h+j})`` along a rollout of ``policy``
        started at ``(s, a)`` in layer ``h``; its mean is the exact dilated bonus.
        """
        env = self.env
        N, A = env.n_states, env.n_actions
        out = torch.empty(n, env.H, N, A, dtype=b.dtype)
        grid_s = torch.arange(N).view(1, N, 1).expand(n, N, A)
        grid_a = torch.arange(A).view(1, 1, A).expand(n, N, A)
        for h in range(env.H):
            s, a = grid_s, grid_a
            total = b[h, s, a].clone()
            for j in range(1, env.H - h):
                s = _draw(env.transitions[h + j - 1, s, a], self.generator)
                a = _draw(policy[h + j, s], self.generator)
                total += (1 + 1 / env.H) ** j * b[h + j, s, a]
            out[:, h] = total
        return out
