"""Layered linear MDPs with exact dynamic programming, and oblivious loss adversaries.

The environment of Dai et al. (ICML 2023), Sec. 2: an episodic MDP with layers
``S_0 = {s0}, S_1, ..., S_{H-1}``, actions ``[A]``, transitions only to the next layer, and
features ``phi(s, a)`` in ``R^d`` with ``||phi||_2 <= 1``. The generator makes the transitions
linear in the features, ``P_h(s' | s, a) = <phi_h(s, a), mu_h(s')>`` with ``phi`` in the simplex and
each ``mu_h[i, :]`` a distribution, and the adversary's losses ``l_{k,h}(s, a) = <phi_h(s, a),
theta_{k,h}>`` with ``theta`` in ``[0, 1]^d``; then every policy's Q-function is linear in
``phi`` (``Q_h = <phi, theta_h + mu_h V_{h+1}>``), the paper's linear-Q assumption. Layers are
0-based; each layer has ``n_states`` states (only state 0 of layer 0 is reached).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)

__all__ = ["AdversaryKind", "LinearMDP", "Trajectory", "make_adversary"]

AdversaryKind = Literal["stochastic", "switching", "drift"]
"""One of ``"stochastic"``, ``"switching"``, ``"drift"`` (see :func:`make_adversary`)."""

_KINDS = ("stochastic", "switching", "drift")


@dataclass(frozen=True)
class Trajectory:
    """One episode: ``states [H]`` and ``actions [H]`` (int64 indices), ``losses [H]`` (float)."""

    states: Tensor
    actions: Tensor
    losses: Tensor


class LinearMDP:
    """A layered episodic MDP whose transitions are linear in the features.

    Args:
        H: episode length (layers ``0..H-1``).
        n_states: states per layer ``N``; n_actions: ``A``; dim: feature dimension ``d``.
        feature_alpha: Dirichlet concentration of each ``phi(s, a)`` (small -> sparse features and
            poorly covered directions). transition_alpha: Dirichlet concentration of ``mu_h[i]``.
        seed: everything is drawn from this seed. dtype: float64 by default (exact DP).

    Attributes:
        features: ``(H, N, A, d)``, each row in the probability simplex (so ``||phi||_2 <= 1``).
        transitions: ``(H-1, N, A, N)``, ``transitions[h, s, a]`` the distribution of ``s_{h+1}``.

    Raises:
        ValueError: a size below 1, non-positive alpha.

    Warns:
        UserWarning: ``A < 2`` (every policy is the same: regret is 0).
    """

    def __init__(
        self,
        H: int,
        n_states: int,
        n_actions: int,
        dim: int,
        feature_alpha: float = 0.3,
        transition_alpha: float = 1.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        H = check_positive_int("H", H)
        n = check_positive_int("n_states", n_states)
        a = check_positive_int("n_actions", n_actions)
        _warn_trivial(a)
        d = check_positive_int("dim", dim)
        fa = check_positive("feature_alpha", feature_alpha)
        ta = check_positive("transition_alpha", transition_alpha)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            phi = torch.distributions.Dirichlet(torch.full((d,), fa, dtype=torch.float64))
            features = phi.sample((H, n, a))
            mu_dist = torch.distributions.Dirichlet(torch.full((n,), ta, dtype=torch.float64))
            mu = mu_dist.sample((max(H - 1, 0), d))  # (H-1, d, N)
        transitions = torch.einsum("hsad,hdt->hsat", features[:-1], mu)
        self._set(features.to(dtype), transitions.to(dtype))

    @classmethod
    def from_tensors(
        cls, features: Tensor, transitions: Tensor, *, normalize: bool = False
    ) -> LinearMDP:
        """An MDP from given ``features (H, N, A, d)`` and ``transitions (H-1, N, A, N)``.

        With ``normalize``, feature rows of norm above 1 are scaled to norm 1; otherwise they are
        an error. Linear-Q holds only if the transitions are linear in the features.

        Raises:
            ValueError: a feature norm above 1, transition rows that are negative or do not sum
                to 1, shapes that are not layered (``transitions`` must have ``H-1`` layers over
                the same ``N`` states).

        Warns:
            UserWarning: ``A < 2``.
        """
        check_float_tensor("features", features, ndim=4)
        check_float_tensor("transitions", transitions, ndim=4)
        H, n, a, _ = features.shape
        if a < 2:
            raise ValueError(
                f"features: expected A >= 2 actions, got shape {tuple(features.shape)}"
            )
        if tuple(transitions.shape) != (H - 1, n, a, n):
            raise ValueError(
                f"transitions: expected layered shape (H-1, N, A, N) = {(H - 1, n, a, n)}, "
                f"got {tuple(transitions.shape)}"
            )
        check_finite("features", features)
        norms = features.norm(dim=-1)
        if normalize:
            features = features / norms.clamp_min(1.0).unsqueeze(-1)
        elif bool((norms > 1 + 1e-9).any()):
            raise ValueError(
                f"features: expected ||phi(s, a)||_2 <= 1 (or normalize=True), got max norm "
                f"{float(norms.max()):.6g}"
            )
        check_finite("transitions", transitions)
        sums = transitions.sum(-1)
        if bool((transitions < 0).any()) or bool(((sums - 1).abs() > 1e-9).any()):
            raise ValueError(
                "transitions: expected each row (h, s, a) to be a distribution over the next "
                f"layer, got row sums in [{float(sums.min()):.6g}, {float(sums.max()):.6g}] and "
                f"min entry {float(transitions.min()):.6g}"
            )
        env = cls.__new__(cls)
        env._set(features, transitions)
        return env

    def _set(self, features: Tensor, transitions: Tensor) -> None:
        self.features = features
        self.transitions = transitions
        self.H, self.n_states, self.n_actions, self.dim = features.shape

    # ------------------------------------------------------------------ validation

    def check_policy(self, policy: Tensor, name: str = "policy") -> Tensor:
        """``policy`` if it is ``(H, N, A)`` with rows on the simplex (tolerance 1e-6).

        Raises:
            ValueError: wrong shape, negative entries, NaN, or rows not summing to 1.
        """
        check_float_tensor(name, policy, ndim=3)
        shape = (self.H, self.n_states, self.n_actions)
        if tuple(policy.shape) != shape:
            raise ValueError(
                f"{name}: expected shape (H, N, A) = {shape}, got {tuple(policy.shape)}"
            )
        sums = policy.sum(-1)
        if not bool(((sums - 1).abs() <= 1e-6).all()) or bool((policy < 0).any()):
            raise ValueError(
                f"{name}: expected rows on the probability simplex, got row sums in "
                f"[{float(sums.min()):.6g}, {float(sums.max()):.6g}] and min entry "
                f"{float(policy.min()):.6g}"
            )
        return policy

    def check_loss(self, loss: Tensor, name: str = "loss", *, unit: bool = True) -> Tensor:
        """``loss`` if it is ``(..., H, N, A)`` with every entry in ``[0, 1]`` (no NaN).

        With ``unit=False`` any finite values pass (cumulative losses).

        Raises:
            ValueError: wrong trailing shape, NaN, or an entry outside ``[0, 1]``.
        """
        check_float_tensor(name, loss)
        shape = (self.H, self.n_states, self.n_actions)
        if loss.dim() < 3 or tuple(loss.shape[-3:]) != shape:
            raise ValueError(
                f"{name}: expected shape (..., H, N, A) = {shape}, got {tuple(loss.shape)}"
            )
        if not unit:
            check_finite(name, loss)
        elif bool(loss.isnan().any()) or bool(((loss < 0) | (loss > 1)).any()):
            raise ValueError(
                f"{name}: expected losses in [0, 1] without NaN, got range "
                f"[{float(loss.min()):.6g}, {float(loss.max()):.6g}]"
            )
        return loss

    def check_theta(self, theta: Tensor, name: str = "theta") -> Tensor:
        """``theta`` if it is ``(K, H, d)`` with the env's ``H`` and ``d`` and finite entries.

        Raises:
            ValueError: wrong shape, K = 0, or non-finite entries.
        """
        check_float_tensor(name, theta, ndim=3, nonempty=True)
        if tuple(theta.shape[1:]) != (self.H, self.dim):
            raise ValueError(
                f"{name}: expected shape (K, H, d) with (H, d) = {(self.H, self.dim)}, "
                f"got {tuple(theta.shape)}"
            )
        check_finite(name, theta)
        return theta

    # ------------------------------------------------------------------ exact DP

    def losses(self, theta: Tensor) -> Tensor:
        """Loss tables ``l(s, a) = <phi_h(s, a), theta_h>``: ``theta (..., H, d)`` -> ``(..., H, N, A)``."""
        return torch.einsum("hsad,...hd->...hsa", self.features, theta.to(self.features.dtype))

    def q_values(self, policy: Tensor, loss: Tensor, *, validate: bool = True) -> Tensor:
        """``Q^pi (..., H, N, A)`` for ``policy (..., H, N, A)`` and ``loss (..., H, N, A)``.

        Leading dims batch over policies and loss tables (broadcast; ``validate=False`` for
        batched policies).

        Backward DP: ``Q_h = l_h + P_h V_{h+1}``, ``V_h(s) = sum_a pi_h(a|s) Q_h(s, a)``.
        """
        if validate:
            self.check_policy(policy)
            self.check_loss(loss)
        layers: list[Tensor] = []
        v_next: Tensor | None = None
        for h in range(self.H - 1, -1, -1):
            qh = loss[..., h, :, :]
            if v_next is not None:
                qh = qh + (self.transitions[h] @ v_next.unsqueeze(-1).unsqueeze(-3)).squeeze(-1)
            layers.append(qh)
            v_next = (policy[..., h, :, :] * qh).sum(-1)
        return torch.stack(layers[::-1], dim=-3)

    def value(self, policy: Tensor, loss: Tensor, *, validate: bool = True) -> Tensor:
        """``V^pi_0(s0)`` (shape ``(...)``, a scalar for one loss table)."""
        q = self.q_values(policy, loss, validate=validate)
        return (policy[..., 0, 0, :] * q[..., 0, 0, :]).sum(-1)

    def occupancy(self, policy: Tensor, *, validate: bool = True) -> Tensor:
        """State occupancy ``q^pi_h(s)`` ``(H, N)``; each layer sums to 1 (start: state 0)."""
        if validate:
            self.check_policy(policy)
        occ = torch.zeros(self.H, self.n_states, dtype=policy.dtype, device=policy.device)
        occ[0, 0] = 1.0
        for h in range(self.H - 1):
            occ[h + 1] = (
                (occ[h].unsqueeze(-1) * policy[h]).unsqueeze(-1) * self.transitions[h]
            ).sum((0, 1))
        return occ

    def optimal(self, loss: Tensor, *, validate: bool = True) -> tuple[Tensor, Tensor]:
        """The best deterministic policy for ``loss (..., H, N, A)`` and its value ``V*_0(s0)``.

        ``loss`` may be any finite table (e.g. a cumulative loss). Ties go to the lowest action
        index. Returns ``(policy (..., H, N, A), value (...))``.
        """
        if validate:
            self.check_loss(loss, unit=False)
        policy = torch.zeros_like(loss)
        v_next: Tensor | None = None
        for h in range(self.H - 1, -1, -1):
            qh = loss[..., h, :, :]
            if v_next is not None:
                qh = qh + (self.transitions[h] @ v_next.unsqueeze(-1).unsqueeze(-3)).squeeze(-1)
            v_next, best = qh.min(-1)
            policy[..., h, :, :] = torch.nn.functional.one_hot(best, self.n_actions).to(loss.dtype)
        assert v_next is not None
        return policy, v_next[..., 0]

    def rollout(
        self, policy: Tensor, loss: Tensor, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Play one episode of ``policy`` from ``s0``; observe the losses along the path.

        One ``torch.rand(2H)`` draw per episode, inverted through each row's CDF on the host (the
        rows are short; this avoids ``2H`` ``torch.multinomial`` calls and their syncs).
        """
        u = torch.rand(2 * self.H, generator=generator, dtype=torch.float64).tolist()
        states, actions = [0] * self.H, [0] * self.H
        s = 0
        for h in range(self.H):
            states[h] = s
            a = _inverse_cdf(policy[h, s].tolist(), u[2 * h])
            actions[h] = a
            if h < self.H - 1:
                s = _inverse_cdf(self.transitions[h, s, a].tolist(), u[2 * h + 1])
        st, ac = torch.tensor(states), torch.tensor(actions)
        return Trajectory(st, ac, loss[torch.arange(self.H), st, ac])

    def check_trajectory(self, trajectory: Trajectory) -> Trajectory:
        """``trajectory`` if its three fields have length ``H``.

        Raises:
            ValueError: a length other than ``H``.
        """
        for name in ("states", "actions", "losses"):
            t = getattr(trajectory, name)
            if t.dim() != 1 or t.shape[0] != self.H:
                raise ValueError(
                    f"trajectory.{name}: expected length H = {self.H}, got shape {tuple(t.shape)}"
                )
        return trajectory


def _inverse_cdf(probs: list[float], u: float) -> int:
    """The first index whose cumulative probability exceeds ``u`` (the last positive one at most)."""
    total = 0.0
    last = 0
    for i, p in enumerate(probs):
        if p > 0:
            last = i
            total += p
            if u < total:
                return i
    return last


def _warn_trivial(n_actions: int) -> None:
    if n_actions < 2:
        warnings.warn(
            f"n_actions: A = {n_actions}: a single action makes every policy equal (trivial)",
            stacklevel=3,
        )


def make_adversary(
    kind: AdversaryKind, env: LinearMDP, K: int, seed: int = 0, *, n_blocks: int = 8
) -> Tensor:
    """An oblivious loss sequence ``theta (K, H, d)`` in ``[0, 1]``, fixed by ``seed``.

    Kinds:
        ``stochastic``: i.i.d. ``theta_k`` uniform in a box around a fixed mean ``theta_bar``.
        ``switching``: ``theta_k = 0.6 theta_bar + 0.4 theta_block(k)``, ``n_blocks`` contiguous
            blocks alternating between ``theta_A`` and ``theta_B = 1 - theta_A`` (redrawn until the
            two have different optimal policies). The base ``theta_bar`` keeps the cumulative loss
            from being flat (spec 4).
        ``drift``: ``theta_k = 0.5 theta_bar + 0.5 (1 + sin(2 pi k / K + phase)) / 2``, one slow cycle.

    Raises:
        ValueError: an unknown kind, ``K < 1`` or ``n_blocks < 1``.
    """
    check_choice("kind", kind, _KINDS)
    K = check_positive_int("K", K)
    n_blocks = check_positive_int("n_blocks", n_blocks)
    gen = torch.Generator().manual_seed(seed)
    shape = (env.H, env.dim)
    dt = torch.float64
    base = torch.rand(shape, generator=gen, dtype=dt)
    if kind == "stochastic":
        radius = torch.minimum(base, 1 - base)
        noise = 2 * torch.rand((K, *shape), generator=gen, dtype=dt) - 1
        return base + radius * noise
    if kind == "drift":
        phase = 2 * torch.pi * torch.rand(shape, generator=gen, dtype=dt)
        k = torch.arange(K, dtype=dt).view(K, 1, 1)
        wave = (1 + torch.sin(2 * torch.pi * k / K + phase)) / 2
        return 0.5 * base + 0.5 * wave
    for _ in range(100):
        theta_a = torch.rand(shape, generator=gen, dtype=dt)
        theta_b = 1 - theta_a
        pa, _ = env.optimal(env.losses(0.6 * base + 0.4 * theta_a), validate=False)
        pb, _ = env.optimal(env.losses(0.6 * base + 0.4 * theta_b), validate=False)
        if not torch.equal(pa, pb):
            break
    block = (torch.arange(K) * n_blocks) // K  # block index of each episode
    pick_b = (block % 2 == 1).to(dt).view(K, 1, 1)
    return 0.6 * base + 0.4 * ((1 - pick_b) * theta_a + pick_b * theta_b)
