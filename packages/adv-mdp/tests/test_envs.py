"""The environment: a valid layered linear MDP whose DP agrees with loops and Monte-Carlo."""

from __future__ import annotations

import itertools

import pytest
import torch

from paperzoo.adv_mdp import LinearMDP, Simulator, make_adversary

from .conftest import random_loss, random_policy


def test_rows_are_distributions_and_features_in_unit_ball(env: LinearMDP) -> None:
    torch.testing.assert_close(
        env.transitions.sum(-1), torch.ones(2, 8, 4, dtype=torch.float64), rtol=0, atol=1e-12
    )
    assert bool((env.transitions >= 0).all())
    assert float(env.features.norm(dim=-1).max()) <= 1.0
    assert env.features.shape == (3, 8, 4, 6) and env.transitions.shape == (2, 8, 4, 8)


@pytest.mark.parametrize("kind", ["stochastic", "switching", "drift"])
def test_adversary_losses_lie_in_unit_interval_and_are_seeded(env: LinearMDP, kind: str) -> None:
    theta = make_adversary(kind, env, 300, seed=3)  # type: ignore[arg-type]
    assert theta.shape == (300, 3, 6)
    loss = env.losses(theta)
    assert float(loss.min()) >= 0.0 and float(loss.max()) <= 1.0
    assert torch.equal(theta, make_adversary(kind, env, 300, seed=3))  # type: ignore[arg-type]
    assert not torch.equal(theta, make_adversary(kind, env, 300, seed=4))  # type: ignore[arg-type]


def test_switching_blocks_have_different_optimal_policies(env: LinearMDP) -> None:
    theta = make_adversary("switching", env, 800, seed=0, n_blocks=8)
    first, second = env.losses(theta[0]), env.losses(theta[100])
    assert torch.equal(theta[0], theta[99]) and not torch.equal(theta[99], theta[100])
    assert not torch.equal(env.optimal(first)[0], env.optimal(second)[0])


def test_q_functions_are_linear_in_the_features(env: LinearMDP) -> None:
    for seed in range(5):
        q = env.q_values(random_policy(env, seed), random_loss(env, seed + 10))
        for h in range(env.H):
            phi = env.features[h].reshape(-1, env.dim)
            target = q[h].reshape(-1, 1)
            w = torch.linalg.lstsq(phi, target).solution
            assert float((phi @ w - target).abs().max()) < 1e-10


def test_q_values_match_a_per_state_loop(env: LinearMDP) -> None:
    pi, loss = random_policy(env, 0), random_loss(env, 1)
    ref = torch.zeros_like(loss)
    for h in reversed(range(env.H)):
        for s in range(env.n_states):
            for a in range(env.n_actions):
                v = float(loss[h, s, a])
                if h < env.H - 1:
                    for t in range(env.n_states):
                        vn = sum(float(pi[h + 1, t, b] * ref[h + 1, t, b]) for b in range(4))
                        v += float(env.transitions[h, s, a, t]) * vn
                ref[h, s, a] = v
    torch.testing.assert_close(env.q_values(pi, loss), ref, rtol=0, atol=1e-12)


def test_batched_q_values_equal_one_at_a_time(env: LinearMDP) -> None:
    pis = torch.stack([random_policy(env, s) for s in range(3)])
    losses = torch.stack([random_loss(env, s + 5) for s in range(3)])
    batched = env.value(pis, losses, validate=False)
    single = torch.stack([env.value(pis[i], losses[i]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)


def test_value_equals_mean_of_rollouts_within_4_se(env: LinearMDP) -> None:
    pi, loss = random_policy(env, 2), random_loss(env, 3)
    states, actions = Simulator(env, "sample", seed=0).sample_states(pi, 20000)
    returns = loss[torch.arange(env.H).unsqueeze(-1), states, actions].sum(0)
    se = float(returns.std()) / 20000**0.5
    assert abs(float(returns.mean()) - float(env.value(pi, loss))) < 4 * se


def test_occupancy_sums_to_one_and_matches_sampled_states(env: LinearMDP) -> None:
    pi = random_policy(env, 4)
    occ = env.occupancy(pi)
    torch.testing.assert_close(occ.sum(-1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    states, _ = Simulator(env, "sample", seed=1).sample_states(pi, 40000)
    freq = torch.stack([torch.bincount(states[h], minlength=8) for h in range(3)]) / 40000
    se = (occ * (1 - occ) / 40000).sqrt()
    assert bool(((freq - occ).abs() <= 4 * se + 1e-12).all())


def test_optimal_policy_beats_every_deterministic_policy(tiny: LinearMDP) -> None:
    loss = random_loss(tiny, 7)
    policy, value = tiny.optimal(loss)
    best = float("inf")
    for choice in itertools.product(range(2), repeat=tiny.H * tiny.n_states):
        det = torch.nn.functional.one_hot(torch.tensor(choice).view(2, 2), 2).to(torch.float64)
        best = min(best, float(tiny.value(det, loss)))
    assert abs(float(value) - best) < 1e-12
    assert abs(float(tiny.value(policy, loss)) - best) < 1e-12


def test_rollout_observes_the_losses_along_its_path(env: LinearMDP) -> None:
    loss = random_loss(env, 0)
    traj = env.rollout(random_policy(env, 0), loss, torch.Generator().manual_seed(0))
    assert traj.states[0] == 0
    for h in range(env.H):
        assert float(traj.losses[h]) == float(loss[h, traj.states[h], traj.actions[h]])
        if h < env.H - 1:  # every step is possible under the transitions
            assert (
                float(env.transitions[h, traj.states[h], traj.actions[h], traj.states[h + 1]]) > 0
            )
