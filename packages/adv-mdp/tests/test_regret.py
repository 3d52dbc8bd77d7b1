"""Exact regret: zero for the hindsight optimum, linear for uniform play; slope fits; end to end."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.adv_mdp import (
    LinearMDP,
    LogBarrierPO,
    RegretTracker,
    UniformPolicy,
    fit_loglog_slope,
    make_adversary,
    run,
)

from .conftest import random_policy


def test_hindsight_optimal_policy_has_zero_regret(env: LinearMDP) -> None:
    theta = make_adversary("switching", env, 200, seed=1)
    best, _ = env.optimal(env.losses(theta.sum(0)))
    tracker = RegretTracker(env, theta)
    for k in range(200):
        tracker.record(k, best)
    assert abs(float(tracker.curve()[-1])) < 1e-12


def test_regret_curve_matches_a_loop_over_prefixes(env: LinearMDP) -> None:
    theta = make_adversary("drift", env, 12, seed=2)
    tracker = RegretTracker(env, theta)
    pis = [random_policy(env, k) for k in range(12)]
    for k, pi in enumerate(pis):
        tracker.record(k, pi)
    curve = tracker.curve()
    for k in range(12):
        learner = sum(float(env.value(pis[j], env.losses(theta[j]))) for j in range(k + 1))
        _, best = env.optimal(env.losses(theta[: k + 1].sum(0)))
        assert abs(float(curve[k]) - (learner - float(best))) < 1e-10


def test_uniform_play_has_linear_regret_on_a_stochastic_adversary(env: LinearMDP) -> None:
    Ks = [250, 500, 1000, 2000, 4000]
    uniform = UniformPolicy(env, 1).policy()
    regrets = []
    for K in Ks:
        tracker = RegretTracker(env, make_adversary("stochastic", env, K, seed=0))
        for k in range(K):
            tracker.record(k, uniform)
        regrets.append(float(tracker.curve()[-1]))
    slope, _, _ = fit_loglog_slope(Ks, regrets)
    assert 0.95 <= slope <= 1.05, slope


def test_slope_fit_recovers_a_power_law_exactly() -> None:
    Ks = [250.0, 500.0, 1000.0, 2000.0, 4000.0]
    slope, intercept, r2 = fit_loglog_slope(Ks, [3 * k**0.5 for k in Ks])
    assert abs(slope - 0.5) < 1e-12 and abs(intercept - math.log(3)) < 1e-12
    assert abs(r2 - 1) < 1e-12


def test_same_seed_gives_the_same_curve(env: LinearMDP) -> None:
    theta = make_adversary("switching", env, 60, seed=0)
    a = run(env, LogBarrierPO(env, 60, c_e=30, c_b=0.01), theta, seed=3)
    b = run(env, LogBarrierPO(env, 60, c_e=30, c_b=0.01), theta, seed=3)
    assert torch.equal(a.regret, b.regret)
    c = run(env, LogBarrierPO(env, 60, c_e=30, c_b=0.01), theta, seed=4)
    assert not torch.equal(a.regret, c.regret)


@pytest.mark.slow
def test_log_barrier_po_beats_uniform_at_k_4000(env: LinearMDP) -> None:
    """The spec's end-to-end check on the reproduction instance (pinned constants, seed 0)."""
    theta = make_adversary("switching", env, 4000, seed=0)
    ours = run(env, LogBarrierPO(env, 4000, c_e=30, c_b=0.01, c_g=1), theta, seed=0)
    uniform = run(env, UniformPolicy(env, 4000), theta, seed=0)
    assert float(ours.regret[-1]) < 0.6 * float(uniform.regret[-1])
