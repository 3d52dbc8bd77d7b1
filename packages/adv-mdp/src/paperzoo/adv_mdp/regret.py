"""Exact expected regret, the episode loop, and log-log slope fits.

Regret is expected (not realised): ``R_k = sum_{j<=k} V^{pi_j}_j(s0) - min_pi sum_{j<=k} V^pi_j(s0)``.
For fixed transitions ``V^pi`` is linear in the loss, so the comparator of every prefix is one
backward DP on the prefix-summed loss table (batched over ``k``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from paperzoo.adv_mdp.envs import LinearMDP
from paperzoo.adv_mdp.learners import Learner
from paperzoo.adv_mdp.simulator import Simulator

__all__ = ["RegretTracker", "RunResult", "fit_loglog_slope", "run"]


class RegretTracker:
    """Exact expected regret of a sequence of policies against the best fixed policy.

    Args:
        env: the MDP. theta: the adversary's ``(K, H, d)`` loss parameters.

    Raises:
        ValueError: ``theta`` of the wrong shape for ``env``.
    """

    def __init__(self, env: LinearMDP, theta: Tensor) -> None:
        self.env = env
        self.theta = env.check_theta(theta)
        self.K = theta.shape[0]
        shape = (self.K, env.H, env.n_states, env.n_actions)
        self._policies = torch.zeros(shape, dtype=env.features.dtype)
        self._recorded = torch.zeros(self.K, dtype=torch.bool)

    def record(self, k: int, policy: Tensor) -> None:
        """Store the policy ``(H, N, A)`` of episode ``k`` (0-based); values are computed in a batch.

        Raises:
            ValueError: ``k`` outside ``[0, K)``.
        """
        if not 0 <= k < self.K:
            raise ValueError(f"k: expected an episode index in [0, {self.K}), got {k}")
        self._policies[k] = policy
        self._recorded[k] = True

    def values(self) -> Tensor:
        """``V^{pi_k}_k(s0)`` of every recorded episode ``(K,)`` (one batched DP)."""
        self._check_recorded()
        return self.env.value(self._policies, self.env.losses(self.theta), validate=False)

    def _check_recorded(self) -> None:
        if not bool(self._recorded.all()):
            missing = int((~self._recorded).sum())
            raise ValueError(f"record: expected every episode recorded, got {missing} missing")

    def comparator(self) -> Tensor:
        """``min_pi sum_{j<=k} V^pi_j(s0)`` for every prefix ``k``: ``(K,)``."""
        cum = self.env.losses(self.theta.cumsum(0))  # (K, H, N, A): linear in theta
        _, best = self.env.optimal(cum, validate=False)
        return best

    def curve(self) -> Tensor:
        """The regret after each episode ``(K,)`` (every episode must have been recorded).

        Raises:
            ValueError: an episode without a recorded policy.
        """
        return self.values().cumsum(0) - self.comparator()


@dataclass(frozen=True)
class RunResult:
    """One learner's run: ``regret (K,)`` curve, per-episode ``values (K,)``, wall ``seconds``."""

    regret: Tensor
    values: Tensor
    seconds: float


def run(
    env: LinearMDP,
    learner: Learner,
    theta: Tensor,
    seed: int = 0,
    simulator: Simulator | None = None,
) -> RunResult:
    """Play ``learner`` for ``K = theta.shape[0]`` episodes and track its exact expected regret.

    Args:
        env: the MDP. learner: any :class:`~paperzoo.adv_mdp.learners.Learner`. theta: ``(K, H, d)``.
        seed: the rollouts' seed. simulator: default ``Simulator(env, "exact", seed=seed)``.

    Raises:
        ValueError: ``theta`` of the wrong shape for ``env``.
    """
    tracker = RegretTracker(env, theta)
    sim = Simulator(env, "exact", seed=seed) if simulator is None else simulator
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for k in range(tracker.K):
        pi = learner.policy()
        tracker.record(k, pi)
        loss = env.losses(theta[k])
        learner.update(env.rollout(pi, loss, gen), sim, loss=loss)
    seconds = time.perf_counter() - start
    return RunResult(tracker.curve(), tracker.values(), seconds)


def fit_loglog_slope(
    K_values: Sequence[float], regrets: Sequence[float]
) -> tuple[float, float, float]:
    """Least squares of ``log R`` on ``log K``: ``(slope, intercept, r2)`` (``R ~ e^intercept K^slope``).

    Raises:
        ValueError: fewer than two points, different lengths, or a non-positive value.
    """
    if len(K_values) != len(regrets) or len(K_values) < 2:
        raise ValueError(
            f"K_values, regrets: expected two or more paired values, got {len(K_values)} and "
            f"{len(regrets)}"
        )
    if min(K_values) <= 0 or min(regrets) <= 0:
        raise ValueError(
            f"regrets: expected positive values for a log-log fit, got min K {min(K_values)} and "
            f"min regret {min(regrets)}"
        )
    x = torch.tensor([math.log(k) for k in K_values], dtype=torch.float64)
    y = torch.tensor([math.log(r) for r in regrets], dtype=torch.float64)
    xc, yc = x - x.mean(), y - y.mean()
    sxx = float((xc * xc).sum())
    if sxx == 0:
        raise ValueError("K_values: expected at least two distinct values")
    slope = float((xc * yc).sum()) / sxx
    intercept = float(y.mean()) - slope * float(x.mean())
    ss_res = float(((yc - slope * xc) ** 2).sum())
    ss_tot = float((yc * yc).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return slope, intercept, r2
