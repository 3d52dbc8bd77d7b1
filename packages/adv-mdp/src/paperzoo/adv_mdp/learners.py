"""Policy-optimisation learners for adversarial linear-Q MDPs and their baselines.

Every learner plays ``policy() -> (H, N, A)`` and, after the episode, ``update(trajectory,
simulator, loss=...)``. The bandit learners run the skeleton of Luo, Wei & Lee (2021) and Dai et al.
(2023, Alg 1/2): estimate ``Qhat_k`` linearly in the features, subtract the dilated bonus ``B_k``,
add to the running table ``G(s, a) = sum_k (Qhat_k - B_k)`` and play FTRL on ``G`` at every state
(a running sum: no per-visit recomputation). Only ``FullInfoPO`` reads the full ``loss`` table.

Schedules (spec 3; ``K`` episodes, ``H`` layers, ``d`` features, ``A`` actions; explicit
``eta``/``gamma``/``beta`` arguments replace the theory values):

============================  ================  ===================  ==============================
learner                       gamma             beta                 eta
============================  ================  ===================  ==============================
LogBarrierPO (Alg 1)          c_g / K           c_b H / sqrt(K)      c_e sqrt(A / (d H^3 K))
MagnitudeReducedPO (Alg 2)    c_g / K           c_b H / sqrt(K)      c_e sqrt(ln A / (d H^3 K))
DilatedBonusPO (Luo 2021)     c_g K^(-2/3)      c_b H K^(-1/3)       gamma / (2 H)
NaivePO                       c_g / K           0                    c_e sqrt(ln A / (d H^3 K))
FullInfoPO                    -                 -                    c_e sqrt(ln A / (H^2 K))
============================  ================  ===================  ==============================

Deviation: the schedules are the spec's derivation from the bounds (the paper states them up to
constants and logs); Alg 3 (``LinearMDPLogBarrier``) is not implemented.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from paperzoo.adv_mdp.envs import LinearMDP, Trajectory
from paperzoo.adv_mdp.estimators import bonus, linear_q_estimate, magnitude_reduced
from paperzoo.adv_mdp.ftrl import hedge, log_barrier
from paperzoo.adv_mdp.simulator import Simulator
from paperzoo.core.checks import check_positive, check_positive_int

__all__ = [
    "DilatedBonusPO",
    "FullInfoPO",
    "Learner",
    "LogBarrierPO",
    "MagnitudeReducedPO",
    "NaivePO",
    "UniformPolicy",
]


class Learner:
    """The common interface: ``policy() -> (H, N, A)``, ``update(trajectory, simulator, loss=)``.

    Args:
        env: the MDP (its sizes and features). K: the number of episodes ``>= 1``.
    """

    name = "learner"

    def __init__(self, env: LinearMDP, K: int) -> None:
        self.env = env
        self.K = check_positive_int("K", K)
        shape = (env.H, env.n_states, env.n_actions)
        self._policy = torch.full(shape, 1.0 / env.n_actions, dtype=env.features.dtype)

    def policy(self) -> Tensor:
        """The policy of the next episode ``(H, N, A)``."""
        return self._policy

    def update(
        self, trajectory: Trajectory, simulator: Simulator, loss: Tensor | None = None
    ) -> None:
        """Learn from one episode (``loss (H, N, A)`` is read by full-information learners only)."""
        del trajectory, simulator, loss


class UniformPolicy(Learner):
    """Uniform play at every state: the reference whose regret grows linearly in ``K``."""

    name = "Uniform"


class FullInfoPO(Learner):
    """Hedge on the true ``Q^{pi_k}_k`` at every state (an oracle with full-information feedback).

    Args:
        env, K: as :class:`Learner`. eta: explicit rate (default ``c_e sqrt(ln A / (H^2 K))``).
        c_e: the schedule's constant (default 1).

    Raises:
        ValueError: ``eta <= 0`` or ``c_e <= 0``.
    """

    name = "FullInfoPO"

    def __init__(
        self, env: LinearMDP, K: int, *, eta: float | None = None, c_e: float = 1.0
    ) -> None:
        super().__init__(env, K)
        c_e = check_positive("c_e", c_e)
        rate = c_e * math.sqrt(math.log(env.n_actions) / (env.H**2 * self.K))
        self.eta = check_positive("eta", rate if eta is None else eta)
        self.G = torch.zeros_like(self._policy)

    def update(
        self, trajectory: Trajectory, simulator: Simulator, loss: Tensor | None = None
    ) -> None:
        """Add ``Q^{pi_k}`` of the full ``loss`` table to ``G``; Hedge.

        Raises:
            ValueError: ``loss`` is missing.
        """
        if loss is None:
            raise ValueError(
                "loss: expected the full (H, N, A) loss table for FullInfoPO, got None"
            )
        self.G += self.env.q_values(self._policy, loss, validate=False)
        self._policy = hedge(self.G, self.eta, validate=False)


class _BanditPO(Learner):
    """The shared bandit-feedback skeleton: estimate, bonus, running sum, FTRL.

    Subclasses set the theory schedule (``_schedule``), the FTRL step and the estimate transform.
    """

    def __init__(
        self,
        env: LinearMDP,
        K: int,
        *,
        eta: float | None = None,
        gamma: float | None = None,
        beta: float | None = None,
        c_e: float = 1.0,
        c_b: float = 1.0,
        c_g: float = 1.0,
    ) -> None:
        super().__init__(env, K)
        consts = (check_positive(n, v) for n, v in (("c_e", c_e), ("c_b", c_b), ("c_g", c_g)))
        eta_th, gamma_th, beta_th = self._schedule(env, self.K, *consts)
        self.eta = check_positive("eta", eta_th if eta is None else eta)
        self.gamma = check_positive("gamma", gamma_th if gamma is None else gamma, allow_zero=True)
        self.beta = check_positive("beta", beta_th if beta is None else beta, allow_zero=True)
        self.G = torch.zeros_like(self._policy)

    @staticmethod
    def _schedule(
        env: LinearMDP, K: int, c_e: float, c_b: float, c_g: float
    ) -> tuple[float, float, float]:
        """``(eta, gamma, beta)`` of the theory schedule (the module table)."""
        raise NotImplementedError

    def _estimate(self, q_hat: Tensor) -> Tensor:
        return q_hat

    def _ftrl(self, G: Tensor) -> Tensor:
        return hedge(G, self.eta, validate=False)

    def update(
        self, trajectory: Trajectory, simulator: Simulator, loss: Tensor | None = None
    ) -> None:
        """One episode's update of ``G`` and the policy (``loss`` is ignored: bandit feedback).

        Raises:
            ValueError: a trajectory whose length is not ``H``.
        """
        env = self.env
        env.check_trajectory(trajectory)
        pi = self._policy
        sigma_inv = simulator.covariance_inverse(pi, self.gamma)
        q_hat = linear_q_estimate(
            env.features, sigma_inv, trajectory.states, trajectory.actions, trajectory.losses
        )
        step = self._estimate(q_hat)
        if self.beta > 0:
            step = step - simulator.dilated_bonus(pi, bonus(env.features, sigma_inv, pi, self.beta))
        self.G += step
        self._policy = self._ftrl(self.G)


class LogBarrierPO(_BanditPO):
    """Dai et al. (2023) Alg 1: policy optimisation with log-barrier FTRL and dilated bonuses.

    The log-barrier tolerates arbitrarily negative estimates, so ``gamma`` no longer caps ``eta``:
    ``O~(sqrt K)`` regret with poly(A). Schedule: ``eta = c_e sqrt(A / (d H^3 K))``,
    ``gamma = c_g / K``, ``beta = c_b H / sqrt(K)`` (the reproduction pins ``c_e = 30, c_b = 0.01,
    c_g = 1``).

    Args:
        env, K: as :class:`Learner`. eta, gamma, beta: explicit values (default: the theory
            schedule). c_e, c_b, c_g: its constants (default 1).

    Raises:
        ValueError: ``eta <= 0``, ``gamma < 0``, ``beta < 0``, ``K < 1``, non-positive constants.
    """

    name = "LogBarrierPO"

    @staticmethod
    def _schedule(
        env: LinearMDP, K: int, c_e: float, c_b: float, c_g: float
    ) -> tuple[float, float, float]:
        H, d, A = env.H, env.dim, env.n_actions
        return c_e * math.sqrt(A / (d * H**3 * K)), c_g / K, c_b * H / math.sqrt(K)

    def _ftrl(self, G: Tensor) -> Tensor:
        return log_barrier(G, self.eta, validate=False)


class MagnitudeReducedPO(_BanditPO):
    """Dai et al. (2023) Alg 2 (experimental): Hedge on magnitude-reduced estimates.

    ``Qtilde = max(Qhat, -1/eta)`` (:func:`~paperzoo.adv_mdp.estimators.magnitude_reduced`), so
    ``eta Qtilde >= -1`` and Hedge's stability holds with ``ln A`` in place of ``A``. Schedule: as
    :class:`LogBarrierPO` with ``eta = c_e sqrt(ln A / (d H^3 K))``.
    Deviation: our reconstruction of the estimator (the paper body was not reachable).

    Args:
        env, K, eta, gamma, beta, c_e, c_b, c_g: as :class:`LogBarrierPO`.

    Raises:
        ValueError: as :class:`LogBarrierPO`.
    """

    name = "MagnitudeReducedPO"

    @staticmethod
    def _schedule(
        env: LinearMDP, K: int, c_e: float, c_b: float, c_g: float
    ) -> tuple[float, float, float]:
        H, d, A = env.H, env.dim, env.n_actions
        return c_e * math.sqrt(math.log(A) / (d * H**3 * K)), c_g / K, c_b * H / math.sqrt(K)

    def _estimate(self, q_hat: Tensor) -> Tensor:
        return magnitude_reduced(q_hat, self.eta)


class DilatedBonusPO(_BanditPO):
    """Luo, Wei & Lee (2021): Hedge with dilated bonuses; ``eta |Qhat| <= 1`` couples ``eta = gamma/(2H)``.

    ``O~(K^{2/3})`` regret with a simulator. Schedule: ``gamma = c_g K^(-2/3)``,
    ``beta = c_b H K^(-1/3)``, ``eta = gamma / (2H)`` (from the explicit ``gamma`` if one is given;
    ``c_e`` is unused).

    Args:
        env, K, eta, gamma, beta, c_e, c_b, c_g: as :class:`LogBarrierPO`.

    Raises:
        ValueError: as :class:`LogBarrierPO`.
    """

    name = "DilatedBonusPO"

    def __init__(
        self,
        env: LinearMDP,
        K: int,
        *,
        eta: float | None = None,
        gamma: float | None = None,
        beta: float | None = None,
        c_e: float = 1.0,
        c_b: float = 1.0,
        c_g: float = 1.0,
    ) -> None:
        if eta is None and gamma is not None:
            eta = check_positive("gamma", gamma) / (2 * env.H)
        super().__init__(env, K, eta=eta, gamma=gamma, beta=beta, c_e=c_e, c_b=c_b, c_g=c_g)

    @staticmethod
    def _schedule(
        env: LinearMDP, K: int, c_e: float, c_b: float, c_g: float
    ) -> tuple[float, float, float]:
        gamma = c_g * K ** (-2.0 / 3.0)
        return gamma / (2 * env.H), gamma, c_b * env.H * K ** (-1.0 / 3.0)


class NaivePO(_BanditPO):
    """Hedge on gamma-regularised linear estimates with no bonus and ``eta`` not coupled to ``gamma``.

    Schedule: ``eta = c_e sqrt(ln A / (d H^3 K))``, ``gamma = c_g / K``, ``beta = 0``.

    Args:
        env, K, eta, gamma, beta, c_e, c_b, c_g: as :class:`LogBarrierPO` (``c_b`` unused).

    Raises:
        ValueError: as :class:`LogBarrierPO`.
    """

    name = "NaivePO"

    @staticmethod
    def _schedule(
        env: LinearMDP, K: int, c_e: float, c_b: float, c_g: float
    ) -> tuple[float, float, float]:
        H, d, A = env.H, env.dim, env.n_actions
        return c_e * math.sqrt(math.log(A) / (d * H**3 * K)), c_g / K, 0.0
