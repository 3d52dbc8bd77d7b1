"""Every bad input of spec section 9 gets a clear error naming the argument."""

from __future__ import annotations

import pytest
import torch

from paperzoo.adv_mdp import (
    DilatedBonusPO,
    FullInfoPO,
    LinearMDP,
    LogBarrierPO,
    RegretTracker,
    Simulator,
    Trajectory,
    bonus,
    exact_inverse,
    hedge,
    log_barrier,
    make_adversary,
    mgr_expectation,
    mgr_inverse,
    run,
)

from .conftest import random_loss, random_policy


def test_feature_norm_above_one_is_rejected_unless_normalized(env: LinearMDP) -> None:
    big = env.features * 3
    with pytest.raises(ValueError, match=r"features: expected \|\|phi"):
        LinearMDP.from_tensors(big, env.transitions)
    fixed = LinearMDP.from_tensors(big, env.transitions, normalize=True)
    assert float(fixed.features.norm(dim=-1).max()) <= 1 + 1e-12


def test_transitions_must_be_distributions_and_layered(env: LinearMDP) -> None:
    with pytest.raises(ValueError, match="transitions: expected each row"):
        LinearMDP.from_tensors(env.features, env.transitions * 1.1)
    with pytest.raises(ValueError, match="transitions: expected layered shape"):
        LinearMDP.from_tensors(env.features, env.transitions[:, :, :, :5])
    with pytest.raises(ValueError, match="transitions: expected layered shape"):
        LinearMDP.from_tensors(env.features, env.transitions[:1])


def test_losses_outside_unit_interval_or_nan_are_rejected(env: LinearMDP) -> None:
    pi, loss = random_policy(env, 0), random_loss(env, 0)
    with pytest.raises(ValueError, match=r"loss: expected losses in \[0, 1\]"):
        env.q_values(pi, loss + 1.5)
    bad = loss.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="loss: expected losses"):
        env.value(pi, bad)
    with pytest.raises(ValueError, match="loss: expected shape"):
        env.optimal(loss[:, :3])
    with pytest.raises(ValueError, match="loss: expected finite"):
        env.optimal(bad)


def test_policy_rows_off_the_simplex_are_rejected(env: LinearMDP) -> None:
    pi = random_policy(env, 0)
    with pytest.raises(ValueError, match="policy: expected rows on the probability simplex"):
        env.occupancy(pi * 1.2)
    with pytest.raises(ValueError, match="policy: expected shape"):
        env.occupancy(pi[:, :, :2])


def test_non_positive_rates_and_negative_regularisers_are_rejected(env: LinearMDP) -> None:
    G = torch.zeros(3, 4, dtype=torch.float64)
    for fn in (log_barrier, hedge):
        with pytest.raises(ValueError, match="eta: expected"):
            fn(G, 0.0)
    with pytest.raises(ValueError, match="eta: expected"):
        LogBarrierPO(env, 10, eta=-1.0)
    with pytest.raises(ValueError, match="gamma: expected"):
        LogBarrierPO(env, 10, gamma=-0.1)
    with pytest.raises(ValueError, match="gamma: expected"):
        exact_inverse(torch.eye(3, dtype=torch.float64), -1.0)
    with pytest.raises(ValueError, match="beta: expected"):
        DilatedBonusPO(env, 10, beta=-1.0)
    with pytest.raises(ValueError, match="beta: expected"):
        bonus(
            env.features,
            torch.eye(6, dtype=torch.float64).expand(3, 6, 6),
            random_policy(env, 0),
            -1,
        )
    with pytest.raises(ValueError, match="eta: expected"):
        FullInfoPO(env, 10, eta=0.0)


def test_k_and_m_below_one_are_rejected(env: LinearMDP) -> None:
    with pytest.raises(ValueError, match="K: expected an integer >= 1"):
        LogBarrierPO(env, 0)
    with pytest.raises(ValueError, match="K: expected an integer >= 1"):
        make_adversary("stochastic", env, 0)
    with pytest.raises(ValueError, match="features: expected shape"):
        mgr_inverse(torch.zeros(0, 4, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="M: expected an integer >= 1"):
        mgr_expectation(torch.eye(4, dtype=torch.float64), 0.1, 0)
    with pytest.raises(ValueError, match="n_cov: expected an integer >= 1"):
        Simulator(env, "sample", n_cov=0)


def test_mgr_step_beyond_one_over_one_plus_gamma_is_rejected() -> None:
    phi = torch.full((5, 4), 0.25, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"step: expected c \* \(1 \+ gamma\) <= 1"):
        mgr_inverse(phi, 0.5, step=0.9)


def test_theta_shape_must_match_the_env(env: LinearMDP) -> None:
    theta = make_adversary("stochastic", env, 10)
    with pytest.raises(ValueError, match=r"theta: expected shape \(K, H, d\)"):
        RegretTracker(env, theta[:, :, :4])
    with pytest.raises(ValueError, match=r"theta: expected shape \(K, H, d\)"):
        run(env, LogBarrierPO(env, 10), theta[:, :2])


def test_a_single_action_warns_that_the_problem_is_trivial() -> None:
    with pytest.warns(UserWarning, match="trivial"):
        LinearMDP(H=2, n_states=2, n_actions=1, dim=3)
    with pytest.warns(UserWarning, match="trivial"):
        log_barrier(torch.zeros(3, 1, dtype=torch.float64), 1.0)


def test_trajectory_of_the_wrong_length_is_rejected(env: LinearMDP) -> None:
    learner = LogBarrierPO(env, 10)
    traj = env.rollout(learner.policy(), random_loss(env, 0), torch.Generator().manual_seed(0))
    short = Trajectory(traj.states[:2], traj.actions[:2], traj.losses[:2])
    with pytest.raises(ValueError, match="trajectory.states: expected length H = 3"):
        learner.update(short, Simulator(env))


def test_unknown_names_and_missing_full_information_are_rejected(env: LinearMDP) -> None:
    with pytest.raises(ValueError, match="kind"):
        make_adversary("adaptive", env, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        Simulator(env, "approx")  # type: ignore[arg-type]
    learner = FullInfoPO(env, 10)
    traj = env.rollout(learner.policy(), random_loss(env, 0), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="loss: expected the full"):
        learner.update(traj, Simulator(env))
