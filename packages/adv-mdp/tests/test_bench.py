"""The benchmark's races compare equal things: its scipy reference agrees with the solver."""

from __future__ import annotations

import pytest
import torch

from paperzoo.adv_mdp import LinearMDP, LogBarrierPO, log_barrier
from paperzoo.adv_mdp.bench import BENCHMARK, _brentq_solver, _episode, _random_g
from paperzoo.core.bench import get_benchmark


def test_benchmark_is_registered() -> None:
    assert get_benchmark("adv-mdp") is BENCHMARK


def test_brentq_reference_agrees_with_the_batched_solver() -> None:
    pytest.importorskip("scipy")
    G = _random_g(50, 6)
    torch.testing.assert_close(_brentq_solver(G, 0.5)(), log_barrier(G, 0.5), rtol=0, atol=1e-12)


def test_timed_episode_advances_the_learner(env: LinearMDP) -> None:
    learner = LogBarrierPO(env, 10, c_e=30, c_b=0.01)
    step = _episode(env, learner, 10)
    before = learner.policy().clone()
    step()
    assert not torch.equal(before, learner.policy())
