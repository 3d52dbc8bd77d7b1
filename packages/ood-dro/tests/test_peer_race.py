"""The skwdro race of the benchmark, and the exact robust risk it scores every fit by."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from paperzoo.ood_dro.bench import peer_race, robust_risk
from paperzoo.ood_dro.data import two_gaussians
from paperzoo.ood_dro.losses import robust_logistic_linear


def _slow_robust_risk(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, rho: float) -> float:
    """min over a fine log-grid of lambda of lambda rho + mean phi_lambda (float64, no bisection)."""
    lams = torch.logspace(-0.5, 1.5, 4001, dtype=torch.float64)
    margin = y.double() * (x.double() @ w.double())
    vals = [
        float(lam * rho + robust_logistic_linear(margin, w.norm(), float(lam)).mean())
        for lam in lams
    ]
    return min(vals)


def test_robust_risk_matches_a_grid_search_over_lambda() -> None:
    x, y = two_gaussians(60, 4, 1.0, seed=3)
    w = torch.tensor([0.4, -0.3, 0.8, 0.1], dtype=torch.float64)
    risk, lam = robust_risk(w, x.double(), y, 0.05)
    assert risk == pytest.approx(_slow_robust_risk(w, x, y, 0.05), abs=1e-6)
    assert lam > float(w.norm()) ** 2 / 8


def test_robust_risk_inverts_the_penalty_radius_correspondence() -> None:
    # at a fixed theta: rho(gamma) = mean t*^2 gives back lambda* = gamma and the penalty value
    x, y = two_gaussians(80, 5, 1.0, seed=4)
    w = torch.tensor([0.5, 0.2, -0.4, 0.3, 0.6], dtype=torch.float64)
    gamma, mu = 1.3, y.double() * (x.double() @ w)
    eps = 1e-6  # rho = -d/dgamma mean phi_gamma (Danskin), by a central difference
    phi = lambda g: float(robust_logistic_linear(mu, w.norm(), g).mean())  # noqa: E731
    rho = -(phi(gamma + eps) - phi(gamma - eps)) / (2 * eps)
    risk, lam = robust_risk(w, x.double(), y, rho)
    assert lam == pytest.approx(gamma, rel=1e-4)
    assert risk == pytest.approx(gamma * rho + phi(gamma), abs=1e-7)


def test_robust_risk_of_a_zero_model_is_log_two() -> None:
    x, y = two_gaussians(10, 3, 1.0, seed=0)
    risk, _ = robust_risk(torch.zeros(3), x, y, 0.1)
    assert risk == pytest.approx(math.log(2), abs=1e-9)


@pytest.mark.skipif(importlib.util.find_spec("skwdro") is None, reason="skwdro not installed")
def test_peer_race_runs_at_a_tiny_size() -> None:
    rows = peer_race(n=40, d=3, tol=0.9, rounds=1, min_run_time=0.01, try_default=False)
    assert len(rows) == 3 and len({r.case for r in rows}) == 1
    assert all(r.median_s > 0 and r.threads >= 1 for r in rows)
    ours = [r for r in rows if r.impl.startswith("ours: closed form + LBFGS")]
    assert len(ours) == 1 and ours[0].ratio == 1.0
    assert any("skwdro" in r.impl and "robust risk" in r.impl for r in rows)
