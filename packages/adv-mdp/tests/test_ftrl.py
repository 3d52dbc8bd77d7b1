"""Log-barrier FTRL: the KKT root, the A = 2 closed form, invariances and scipy; Hedge."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.adv_mdp import hedge, log_barrier


def _closed_form_two(G: torch.Tensor, eta: float) -> torch.Tensor:
    """``p_1`` for A = 2, in the cancellation-free form for ``D > 0``."""
    D = eta * (G[..., 1] - G[..., 0])
    root = (D * D + 4).sqrt()
    small = 2 / ((2 - D) + root)
    large = 1 - 2 / ((2 + D) + root)
    return torch.where(D > 0, large, small)


def _random_g(n: int, A: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(n, A, generator=gen, dtype=torch.float64) * 10 ** torch.randint(
        -2, 4, (n, 1), generator=gen
    )
    G[::7, 0] = -1e6  # very negative estimates: the log-barrier's point
    return G


def test_two_actions_match_the_closed_form() -> None:
    D = torch.tensor([-1e9, -50.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 50.0, 1e9], dtype=torch.float64)
    G = torch.stack([torch.zeros_like(D), D], -1)
    p = log_barrier(G, 1.0)
    torch.testing.assert_close(p[:, 0], _closed_form_two(G, 1.0), rtol=0, atol=1e-12)
    assert float(p[-1, 0]) < 1.0  # the literal formula would round to exactly 1 here


@pytest.mark.parametrize("A", [2, 5, 32, 1000])
def test_kkt_conditions_hold_to_machine_precision(A: int) -> None:
    G = _random_g(200, A, A)
    for eta in (1e-3, 0.7, 50.0):
        p = log_barrier(G, eta)
        assert float((p.sum(-1) - 1).abs().max()) < 1e-12
        assert bool((p > 0).all())
        gap = G - G.min(-1, keepdim=True).values
        lam = 1 / (eta * p) - gap  # eta * (G_a + lambda) p_a = 1 for every a
        spread = (lam.max(-1).values - lam.min(-1).values) * eta
        scale = (eta * gap.max(-1).values).clamp_min(1.0)
        assert bool((spread <= 1e-12 * scale).all()), float((spread / scale).max())


def test_newton_matches_a_per_row_bisection_loop() -> None:
    G = _random_g(30, 6, 1)
    p = log_barrier(G, 0.3)
    for i in range(G.shape[0]):
        g = [0.3 * (float(v) - float(G[i].min())) for v in G[i]]
        lo, hi = 1.0, 6.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(1 / (x + mid) for x in g) > 1 else (lo, mid)
        ref = torch.tensor([1 / (x + lo) for x in g], dtype=torch.float64)
        torch.testing.assert_close(p[i], ref / ref.sum(), rtol=0, atol=1e-12)


def test_bisection_fallback_agrees_with_newton() -> None:
    G = _random_g(50, 8, 2)
    torch.testing.assert_close(
        log_barrier(G, 0.5, max_iter=1), log_barrier(G, 0.5), atol=1e-12, rtol=0
    )


def test_policy_is_shift_invariant_and_scales_with_eta() -> None:
    G = _random_g(100, 7, 3)
    p = log_barrier(G, 0.2)
    torch.testing.assert_close(log_barrier(G + 123.4, 0.2), p, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_barrier(3.0 * G, 0.2 / 3.0), p, rtol=0, atol=1e-12)


def test_small_eta_gives_uniform_play() -> None:
    p = log_barrier(_random_g(20, 5, 4).clamp(-100, 100), 1e-12)
    torch.testing.assert_close(p, torch.full_like(p, 0.2), rtol=0, atol=1e-9)


def test_float32_input_keeps_its_dtype_and_leading_dims() -> None:
    G = torch.randn(3, 4, 5)
    p = log_barrier(G, 1.0)
    assert p.dtype == torch.float32 and p.shape == (3, 4, 5)


def test_log_barrier_matches_scipy_slsqp_and_brentq() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    import numpy as np

    gen = torch.Generator().manual_seed(5)
    for _ in range(100):
        A = int(torch.randint(2, 8, (1,), generator=gen))
        G = torch.randn(A, generator=gen, dtype=torch.float64) * 3
        eta = float(torch.rand(1, generator=gen, dtype=torch.float64)) * 2 + 0.05
        p = log_barrier(G, eta).numpy()
        g = G.numpy()

        def obj(q: np.ndarray, g: np.ndarray = g, eta: float = eta) -> float:
            return float(q @ g - np.log(q).sum() / eta)

        res = optimize.minimize(
            obj,
            np.full(A, 1 / A),
            method="SLSQP",
            bounds=[(1e-12, 1.0)] * A,
            constraints=[{"type": "eq", "fun": lambda q: q.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert np.abs(res.x - p).max() < 1e-6
        shift = g - g.min()
        lam = optimize.brentq(
            lambda x, s=shift, e=eta: (1 / (e * s + x)).sum() - 1, 1.0, float(A), xtol=1e-15
        )
        assert np.abs(1 / (eta * shift + lam) - p).max() < 1e-6


def test_hedge_is_softmax_of_minus_eta_g() -> None:
    G = _random_g(40, 6, 6).clamp(-50, 50)
    p = hedge(G, 0.3)
    for i in range(G.shape[0]):
        w = [math.exp(-0.3 * (float(v) - float(G[i].min()))) for v in G[i]]
        ref = torch.tensor([x / sum(w) for x in w], dtype=torch.float64)
        torch.testing.assert_close(p[i], ref, rtol=0, atol=1e-12)
    assert not bool(hedge(torch.tensor([[-1e6, 0.0]], dtype=torch.float64), 1.0).isnan().any())
