"""The Gaussian-mixture simulation: the reference's matrices, the |C| sampling, Bayes errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperzoo.dis_vs_gen import bayes_error, gaussian_mixture, mixture_parameters, two_class_error


def test_easy_covariance_and_means_are_the_reference_ones() -> None:
    p = mixture_parameters(5, 2, "easy")
    torch.testing.assert_close(
        p.cov, torch.diag(torch.tensor([5.0, 5.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    )
    torch.testing.assert_close(p.means, torch.tensor([[-1.0] * 5, [1.0] * 5], dtype=torch.float64))


def test_means_are_rescaled_for_more_than_two_classes() -> None:
    p = mixture_parameters(3, 5, "easy")  # centres -1, 1, 2, 4, 8 -> (c - 4) / 4
    ref = (torch.tensor([-1.0, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64) - 4) / 4
    torch.testing.assert_close(p.means[:, 0], ref)
    torch.testing.assert_close(
        p.cov, torch.diag(torch.tensor([3.0, 1.0, 1.0], dtype=torch.float64)) / 16
    )


def test_hard_covariance_is_the_absolute_value_of_the_reference_matrix() -> None:
    n = 30
    np.random.seed(0)  # the reference's construction, verbatim in spirit
    a = 2 * np.random.rand(n, n) - 1
    c = a.T @ a
    c[np.diag_indices(n)] = [n] * (n // 2) + [1] * (n - n // 2)
    lam, q = np.linalg.eigh(c)
    assert lam.min() < 0  # indefinite, as the spec says
    p = mixture_parameters(n, 2, "hard")
    np.testing.assert_allclose(p.cov.numpy(), (q * np.abs(lam)) @ q.T, atol=1e-9)
    np.testing.assert_allclose(p.sampler.numpy().T @ p.sampler.numpy(), p.cov.numpy(), atol=1e-9)


def test_samples_have_the_stated_moments() -> None:
    x, y = gaussian_mixture(4, 2, "hard", n_per_class=40_000, seed=1)
    p = mixture_parameters(4, 2, "hard")
    for c in range(2):
        xc = x[y == c]
        torch.testing.assert_close(xc.mean(0), p.means[c], rtol=0, atol=0.05)
        torch.testing.assert_close(torch.cov(xc.T), p.cov, rtol=0.05, atol=0.05)
    assert torch.bincount(y).tolist() == [40_000, 40_000]


def test_easy_bayes_error_matches_the_closed_form() -> None:
    n = 4  # Delta^2 = 4 (floor(n/2)/n + ceil(n/2)) -> Phi(-Delta/2) = 0.0569
    delta = math.sqrt(4 * (2 / 4 + 2))
    exact = 0.5 * math.erfc(delta / 2 / math.sqrt(2))
    assert abs(exact - 0.0569) < 1e-3
    mc = bayes_error(n, 2, "easy", n_samples=200_000)
    assert abs(mc - exact) < 4 * math.sqrt(exact * (1 - exact) / 200_000)


def test_two_class_error_matches_monte_carlo_for_a_suboptimal_rule() -> None:
    p = mixture_parameters(3, 2, "easy")
    w = torch.tensor([1.0, 0.2, -0.3], dtype=torch.float64)
    exact = two_class_error(w, 0.1, p.means, p.cov)
    x, y = gaussian_mixture(3, 2, "easy", n_per_class=100_000, seed=3)
    mc = float((((x @ w + 0.1) > 0).long() != y).double().mean())
    assert abs(mc - exact) < 0.005


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        mixture_parameters(3, 2, "medium")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_classes"):
        gaussian_mixture(3, 1)
    with pytest.raises(ValueError, match="means, cov"):
        two_class_error(torch.ones(3, dtype=torch.float64), 0.0, torch.zeros(2, 4), torch.eye(3))
