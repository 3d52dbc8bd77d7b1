"""Covariance inverses: MGR's expectation, convergence and norm bound; the regularised inverse's rate."""

from __future__ import annotations

import itertools

import torch

from paperzoo.adv_mdp import (
    LinearMDP,
    exact_covariance,
    exact_inverse,
    fit_loglog_slope,
    mgr_expectation,
    mgr_inverse,
    regularized_inverse,
)

from .conftest import random_policy


def _draws(n: int, d: int, seed: int) -> torch.Tensor:
    """Features on the simplex (norm <= 1), a skewed distribution: ``(n, d)``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=gen, dtype=torch.float64) ** 3
    return x / x.sum(-1, keepdim=True)


def _second_moment(d: int) -> torch.Tensor:
    big = _draws(400000, d, 999)
    return big.T @ big / big.shape[0]


def test_mgr_matches_a_loop_over_the_explicit_products() -> None:
    phi = _draws(6, 4, 0)
    gamma, c = 0.1, 0.5
    eye = torch.eye(4, dtype=torch.float64)
    ref = c * eye
    for i in range(1, 7):
        prod = eye.clone()
        for j in range(i):
            prod = prod @ (eye - c * (gamma * eye + torch.outer(phi[j], phi[j])))
        ref = ref + c * prod
    torch.testing.assert_close(mgr_inverse(phi, gamma, c), ref, rtol=0, atol=1e-13)
    batched = mgr_inverse(torch.stack([phi, phi.flip(0)]), gamma, c)
    torch.testing.assert_close(batched[0], ref, rtol=0, atol=1e-13)


def test_mgr_monte_carlo_mean_matches_the_truncated_neumann_series() -> None:
    d, M, gamma, reps = 4, 30, 0.05, 4000
    sigma = _second_moment(d)
    feats = _draws(reps * M, d, 1).view(reps, M, d)
    mean = mgr_inverse(feats, gamma).mean(0)
    expected = mgr_expectation(sigma, gamma, M)
    rel = float(torch.linalg.matrix_norm(mean - expected) / torch.linalg.matrix_norm(expected))
    assert rel < 0.02, rel


def test_mgr_expectation_approaches_the_inverse_geometrically() -> None:
    sigma = _second_moment(4)
    target = exact_inverse(sigma, 0.1)
    gaps = [
        float(torch.linalg.matrix_norm(mgr_expectation(sigma, 0.1, M) - target, ord=2))
        for M in (10, 20, 40, 80)
    ]
    assert all(b < a for a, b in itertools.pairwise(gaps))
    # geometric: log-gap linear in M, each doubling of M at least squares the ratio
    assert gaps[3] / gaps[2] <= (gaps[2] / gaps[1]) ** 1.5


def test_every_mgr_sample_has_norm_at_most_one_over_gamma() -> None:
    for gamma in (0.01, 0.3, 2.0):
        feats = _draws(200 * 50, 5, 2).view(200, 50, 5)
        norms = torch.linalg.matrix_norm(mgr_inverse(feats, gamma), ord=2)
        assert float(norms.max()) <= 1 / gamma + 1e-9


def test_regularized_inverse_error_falls_as_one_over_sqrt_m() -> None:
    d, A, gamma = 4, 3, 0.1
    gen = torch.Generator().manual_seed(3)
    pool = torch.rand(200000, A, d, generator=gen, dtype=torch.float64) ** 3
    pool = pool / pool.sum(-1, keepdim=True)
    probs = torch.softmax(torch.randn(200000, A, generator=gen, dtype=torch.float64), -1)
    target = regularized_inverse(pool, probs, gamma)
    Ms, errs = [64, 256, 1024, 4096], []
    for M in Ms:
        idx = torch.randint(0, 200000, (100, M), generator=gen)
        est = regularized_inverse(pool[idx], probs[idx], gamma)
        errs.append(float(torch.linalg.matrix_norm(est - target).mean()))
    slope, _, _ = fit_loglog_slope(Ms, errs)
    assert -0.7 <= slope <= -0.3, slope


def test_exact_covariance_matches_a_per_state_loop(env: LinearMDP) -> None:
    pi = random_policy(env, 0)
    occ = env.occupancy(pi)
    ref = torch.zeros(env.H, env.dim, env.dim, dtype=torch.float64)
    for h in range(env.H):
        for s in range(env.n_states):
            for a in range(env.n_actions):
                phi = env.features[h, s, a]
                ref[h] += occ[h, s] * pi[h, s, a] * torch.outer(phi, phi)
    torch.testing.assert_close(exact_covariance(env.features, occ, pi), ref, rtol=0, atol=1e-14)


def test_gamma_zero_gives_the_pseudo_inverse_of_a_rank_deficient_layer(env: LinearMDP) -> None:
    pi = random_policy(env, 1)
    sigma = exact_covariance(env.features, env.occupancy(pi), pi)
    assert int(torch.linalg.matrix_rank(sigma[0])) <= env.n_actions < env.dim
    inv = exact_inverse(sigma, 0.0)
    torch.testing.assert_close(sigma[0] @ inv[0] @ sigma[0], sigma[0], rtol=0, atol=1e-10)
