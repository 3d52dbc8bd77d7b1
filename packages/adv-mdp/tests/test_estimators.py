"""The linear Q estimate is unbiased (gamma = 0) or shrunk as predicted; bonus and magnitude reduction."""

from __future__ import annotations

import torch

from paperzoo.adv_mdp import (
    LinearMDP,
    Simulator,
    bonus,
    exact_covariance,
    exact_inverse,
    linear_q_estimate,
    magnitude_reduced,
)

from .conftest import random_loss, random_policy


def _estimates(
    env: LinearMDP, pi: torch.Tensor, loss: torch.Tensor, gamma: float, n: int
) -> torch.Tensor:
    """``n`` estimates ``Qhat (n, H, N, A)`` from independent episodes, vectorised over episodes."""
    sigma_inv = exact_inverse(exact_covariance(env.features, env.occupancy(pi), pi), gamma)
    states, actions = Simulator(env, "sample", seed=5).sample_states(pi, n)  # (H, n)
    layer = torch.arange(env.H).unsqueeze(-1)
    cost_to_go = loss[layer, states, actions].flip(0).cumsum(0).flip(0)  # (H, n)
    phi = env.features[layer, states, actions]  # (H, n, d)
    w = torch.einsum("hde,hne->nhd", sigma_inv, phi) * cost_to_go.T.unsqueeze(-1)
    return torch.einsum("hsad,nhd->nhsa", env.features, w)


def test_vectorised_estimate_matches_a_loop_over_layers_and_actions(env: LinearMDP) -> None:
    pi, loss = random_policy(env, 0), random_loss(env, 0)
    sigma_inv = exact_inverse(exact_covariance(env.features, env.occupancy(pi), pi), 0.1)
    traj = env.rollout(pi, loss, torch.Generator().manual_seed(1))
    q_hat = linear_q_estimate(env.features, sigma_inv, traj.states, traj.actions, traj.losses)
    for h in range(env.H):
        L = float(traj.losses[h:].sum())
        w = sigma_inv[h] @ env.features[h, traj.states[h], traj.actions[h]] * L
        for s in range(env.n_states):
            for a in range(env.n_actions):
                assert abs(float(q_hat[h, s, a]) - float(env.features[h, s, a] @ w)) < 1e-12


def test_gamma_zero_estimate_is_unbiased_on_reachable_pairs(env: LinearMDP) -> None:
    pi, loss = random_policy(env, 1), random_loss(env, 2)
    q_hat = _estimates(env, pi, loss, 0.0, 50000)
    mean, se = q_hat.mean(0), q_hat.std(0) / 50000**0.5
    reach = (env.occupancy(pi) > 1e-9).unsqueeze(-1).expand_as(mean) & (pi > 0)
    q = env.q_values(pi, loss)
    assert bool(((mean - q).abs() <= 4 * se + 1e-9)[reach].all())


def test_gamma_estimate_mean_is_the_shrunk_linear_prediction(env: LinearMDP) -> None:
    pi, loss, gamma = random_policy(env, 3), random_loss(env, 4), 0.05
    q_hat = _estimates(env, pi, loss, gamma, 50000)
    mean, se = q_hat.mean(0), q_hat.std(0) / 50000**0.5
    q = env.q_values(pi, loss)
    sigma = exact_covariance(env.features, env.occupancy(pi), pi)
    sigma_inv = exact_inverse(sigma, gamma)
    expected = torch.zeros_like(q)
    for h in range(env.H):
        phi = env.features[h].reshape(-1, env.dim)
        w = torch.linalg.lstsq(phi, q[h].reshape(-1, 1)).solution.squeeze(-1)
        expected[h] = (phi @ (sigma_inv[h] @ sigma[h] @ w)).view(env.n_states, env.n_actions)
    assert bool(((mean - expected).abs() <= 4 * se + 1e-9).all())
    assert float((expected - q).abs().max()) > 1e-3  # the gamma bias is visible here


def test_bonus_matches_a_per_state_loop(env: LinearMDP) -> None:
    pi = random_policy(env, 5)
    sigma_inv = exact_inverse(exact_covariance(env.features, env.occupancy(pi), pi), 0.2)
    b = bonus(env.features, sigma_inv, pi, 0.7)
    for h in range(env.H):
        for s in range(env.n_states):
            sq = [float(f @ sigma_inv[h] @ f) for f in env.features[h, s]]
            avg = sum(float(pi[h, s, a]) * sq[a] for a in range(env.n_actions))
            for a in range(env.n_actions):
                assert abs(float(b[h, s, a]) - 0.7 * (sq[a] + avg)) < 1e-12


def test_magnitude_reduction_is_bounded_below_and_its_bias_by_eta_q_squared() -> None:
    gen = torch.Generator().manual_seed(0)
    q_hat = torch.randn(10000, generator=gen, dtype=torch.float64) * 20
    for eta in (0.01, 0.1, 1.0):
        q_tilde = magnitude_reduced(q_hat, eta)
        assert float(q_tilde.min()) >= -1 / eta
        gap = q_tilde - q_hat
        assert bool((gap >= 0).all()) and bool((gap <= eta * q_hat**2 + 1e-12).all())
        assert float(gap.mean()) <= eta * float((q_hat**2).mean())
