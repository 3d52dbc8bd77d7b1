"""Shared fixtures of the adv-mdp tests: small layered linear MDPs in float64."""

from __future__ import annotations

import pytest
import torch

from paperzoo.adv_mdp import LinearMDP


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def env() -> LinearMDP:
    """The reproduction's instance: H=3, N=8, A=4, d=6, sparse features."""
    return LinearMDP(H=3, n_states=8, n_actions=4, dim=6, feature_alpha=0.3, seed=0)


@pytest.fixture
def tiny() -> LinearMDP:
    """H=2, N=2, A=2, d=3: small enough to enumerate every deterministic policy."""
    return LinearMDP(H=2, n_states=2, n_actions=2, dim=3, feature_alpha=1.0, seed=1)


def random_policy(env: LinearMDP, seed: int) -> torch.Tensor:
    """A random full-support policy ``(H, N, A)``."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(env.H, env.n_states, env.n_actions, generator=gen, dtype=torch.float64) + 0.1
    return p / p.sum(-1, keepdim=True)


def random_loss(env: LinearMDP, seed: int) -> torch.Tensor:
    """A linear loss table ``(H, N, A)`` with ``theta`` uniform in ``[0, 1]^d``."""
    gen = torch.Generator().manual_seed(seed)
    return env.losses(torch.rand(env.H, env.dim, generator=gen, dtype=torch.float64))
