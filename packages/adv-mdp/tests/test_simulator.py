"""The dilated bonus solves its Bellman equation; sampled bonuses and covariances agree with exact ones."""

from __future__ import annotations

import torch

from paperzoo.adv_mdp import LinearMDP, Simulator, exact_covariance, exact_inverse

from .conftest import random_policy


def _b(env: LinearMDP) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(env.H, env.n_states, env.n_actions, generator=gen, dtype=torch.float64)


def test_exact_bonus_satisfies_the_dilated_bellman_equation(env: LinearMDP) -> None:
    pi, b = random_policy(env, 0), _b(env)
    B = Simulator(env).dilated_bonus(pi, b)
    for h in range(env.H):
        for s in range(env.n_states):
            for a in range(env.n_actions):
                nxt = 0.0
                if h < env.H - 1:
                    for t in range(env.n_states):
                        inner = sum(float(pi[h + 1, t, c] * B[h + 1, t, c]) for c in range(4))
                        nxt += float(env.transitions[h, s, a, t]) * inner
                assert abs(float(B[h, s, a]) - float(b[h, s, a]) - (1 + 1 / env.H) * nxt) < 1e-12


def test_sampled_bonus_is_within_4_se_of_exact(env: LinearMDP) -> None:
    pi, b = random_policy(env, 1), _b(env)
    sim = Simulator(env, "sample", n_bonus=4000, seed=2)
    samples = sim.bonus_samples(pi, b, 4000)
    mean, se = samples.mean(0), samples.std(0) / 4000**0.5
    exact = Simulator(env).dilated_bonus(pi, b)
    assert bool(((mean - exact).abs() <= 4 * se + 1e-12).all())
    assert sim.dilated_bonus(pi, b).shape == exact.shape


def test_sampled_regularized_inverse_approaches_the_exact_inverse(env: LinearMDP) -> None:
    pi = random_policy(env, 3)
    exact = exact_inverse(exact_covariance(env.features, env.occupancy(pi), pi), 0.5)
    sim = Simulator(env, "sample", n_cov=20000, inverse="regularized", seed=4)
    est = sim.covariance_inverse(pi, 0.5)
    rel = torch.linalg.matrix_norm(est - exact) / torch.linalg.matrix_norm(exact)
    assert float(rel.max()) < 0.05


def test_sampled_mgr_inverse_has_the_right_shape_and_norm_bound(env: LinearMDP) -> None:
    pi = random_policy(env, 4)
    est = Simulator(env, "sample", n_cov=50, seed=0).covariance_inverse(pi, 0.5)
    assert est.shape == (env.H, env.dim, env.dim)
    assert float(torch.linalg.matrix_norm(est, ord=2).max()) <= 2.0 + 1e-9
