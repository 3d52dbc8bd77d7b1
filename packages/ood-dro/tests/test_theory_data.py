"""Theory formulas (Monte Carlo, invariances, limits), the data generators and shift_estimate."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from paperzoo.ood_dro import (
    bayes_error,
    digits_shift,
    erm_rate,
    gmm_mean,
    linear_error,
    shift_estimate,
    shifted_unlabeled,
    thm41_rhs,
    thm42_rhs,
    two_gaussians,
)


def test_linear_error_matches_monte_carlo_within_four_standard_errors() -> None:
    d = 10
    g = torch.Generator().manual_seed(0)
    mu0 = torch.randn(d, generator=g, dtype=torch.float64) * 0.4
    theta = mu0 + torch.randn(d, generator=g, dtype=torch.float64) * 0.5
    x, y = two_gaussians(1_000_000, d, mu0.float(), sigma0=1.3, seed=1)
    err_mc = float(((x.double() @ theta) * y <= 0).double().mean())
    p = float(linear_error(theta, mu0, 1.3))
    se = math.sqrt(p * (1 - p) / 1_000_000)
    assert abs(err_mc - p) < 4 * se, (err_mc, p, se)


def test_linear_error_is_invariant_to_positive_scaling_and_bayes_is_its_minimum() -> None:
    mu0 = gmm_mean(7, 1.5).double()
    g = torch.Generator().manual_seed(2)
    thetas = torch.randn(20, 7, generator=g, dtype=torch.float64)
    e = linear_error(thetas, mu0)
    torch.testing.assert_close(linear_error(3.7 * thetas, mu0), e, rtol=1e-12, atol=0)
    b = bayes_error(float(mu0.norm()))  # 1.5 up to float32 rounding of the drawn direction
    assert float(e.min()) >= b - 1e-12
    assert float(linear_error(mu0, mu0)) == pytest.approx(b, abs=1e-12)
    assert bayes_error(1.0) == pytest.approx(0.15865525393145707)


def test_thm42_decreases_in_n_increases_in_alpha_and_its_first_term_vanishes() -> None:
    ns = [0, 10, 100, 1e3, 1e4, 1e6]
    vals = [thm42_rhs(50, 20, n, 0.1) for n in ns]
    assert all(a > b for a, b in itertools.pairwise(vals))
    alphas = [0.0, 0.01, 0.1, 1.0]
    vals = [thm42_rhs(50, 20, 1000, a) for a in alphas]
    assert all(a < b for a, b in itertools.pairwise(vals))
    floor = math.sqrt(2 * math.log(1 / 0.05) / 20)
    # n^{-1/8}: at n = 1e16 the bound is still 0.557 against its limit 0.547
    assert thm42_rhs(50, 20, 1e16, 0.0) == pytest.approx(0.5575, abs=5e-4)
    assert floor == pytest.approx(0.5473, abs=5e-4)
    first = [thm42_rhs(50, 20, n, 0.0) - floor for n in (1e4, 1e8, 1e16, 1e32, 1e64)]
    assert all(a > b > 0 for a, b in itertools.pairwise(first)) and first[-1] < 1e-6


def test_thm41_decreases_in_n_increases_in_alpha_and_erm_rate() -> None:
    vals = [thm41_rhs(50, 20, n, 0.0) for n in (0, 100, 1e4, 1e8)]
    assert all(a > b for a, b in itertools.pairwise(vals))
    assert thm41_rhs(50, 20, 100, 0.5) > thm41_rhs(50, 20, 100, 0.0)
    assert thm41_rhs(50, 20, 1e30, 0.0) == pytest.approx(math.sqrt(2 * math.log(20) / 20), abs=1e-6)
    assert erm_rate(200, 50) == 2.0
    with pytest.raises(ValueError, match="delta"):
        thm41_rhs(50, 20, 100, 0.0, delta=1.0)


def test_shifted_unlabeled_moves_the_mean_by_alpha_ratio_times_its_norm() -> None:
    mu0 = gmm_mean(30, 2.0)
    x, mu1 = shifted_unlabeled(20000, mu0, 0.5, seed=3)
    assert float((mu1 - mu0).norm()) == pytest.approx(1.0, rel=1e-5)
    # the mixture is symmetric: E|<x, mu1>|/||mu1|| is about that of N(||mu1||, 1)
    assert x.shape == (20000, 30)
    _x0, mu10 = shifted_unlabeled(5, 2.0, 0.0, d=30, seed=3)
    torch.testing.assert_close(mu10, mu0)
    xl, yl = two_gaussians(5000, 30, mu0, seed=4)
    assert set(yl.unique().tolist()) == {-1, 1}
    torch.testing.assert_close((xl * yl[:, None]).mean(0), mu0, rtol=0, atol=0.08)


def test_shift_estimate_recovers_a_mean_shift_and_is_small_without_shift() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 2, generator=g)
    b = torch.randn(400, 2, generator=g) + torch.tensor([3.0, 0.0])
    c = torch.randn(400, 2, generator=g)
    assert shift_estimate(a, b) == pytest.approx(3.0, abs=0.3)
    assert shift_estimate(a, c) < 0.5
    with pytest.raises(ValueError, match="x_u: expected 2 features"):
        shift_estimate(a, torch.randn(5, 3))


def test_digits_shift_splits_and_corrupts() -> None:
    ds = digits_shift((3, 8), labels_per_class=20, noise=0.3, shift_pixels=1, seed=0)
    assert ds.num_classes == 2 and ds.x_l.shape == (40, 64)
    assert ds.y_l.bincount().tolist() == [20, 20]
    assert ds.x_u.shape[0] > 100 and ds.x_u.shape[1] == 64
    clean = digits_shift((3, 8), labels_per_class=20, seed=0)
    assert float((ds.x_u - clean.x_u).std()) > 0.2
    torch.testing.assert_close(clean.x_test, ds.x_test)
    full = digits_shift(None, labels_per_class=5, seed=1)
    assert full.num_classes == 10 and full.y_l.shape == (50,)
    with pytest.raises(ValueError, match="classes"):
        digits_shift((3,))
