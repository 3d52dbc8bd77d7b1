"""The closed-form robust losses of a linear binary model against independent computations."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.ood_dro import (
    LinearRobustLoss,
    robust_hinge_linear,
    robust_logistic_linear,
    robust_surrogate,
    robust_zero_one_linear,
)


def _problem(seed: int = 0, n: int = 12, d: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(d, generator=g, dtype=torch.float64)
    x = 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    return theta, x, y


def _linear(theta: Tensor) -> nn.Module:
    lin = nn.Linear(theta.shape[0], 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(theta[None])
    return lin


def _ascent(theta: Tensor, x: Tensor, y: Tensor, loss: str, gamma: float) -> tuple[Tensor, Tensor]:
    """Constant step ~0.1 / (2 gamma), a few thousand steps (the 1/(t+1) schedule is too slow)."""
    with torch.no_grad():
        return robust_surrogate(
            _linear(theta),
            x,
            y,
            loss,
            gamma,
            steps=3000,
            step_size=0.1 / (2 * gamma),
            schedule="constant",
        )


def _line_search(point_loss: object, mu: Tensor, a: float, gamma: float) -> Tensor:
    """Brute force: max over t in a fine grid of ``loss(mu - t a) - gamma t^2`` (per row)."""
    t = torch.linspace(
        0, 4 * (mu.abs().max().item() + 1) / a + 4 * a / gamma, 400001, dtype=torch.float64
    )
    vals = point_loss(mu[:, None] - t[None, :] * a) - gamma * t[None, :] ** 2  # type: ignore[operator]
    out: Tensor = vals.max(1).values
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_closed_form_equals_converged_ascent_above_the_concavity_threshold(
    seed: int,
) -> None:
    theta, x, y = _problem(seed)
    a = theta.norm()
    gamma = 1.5 * float(a**2 / 8)
    phi, z = _ascent(theta, x, y, "logistic", gamma)
    closed = robust_logistic_linear(y * (x @ theta), a, gamma)
    torch.testing.assert_close(closed, phi, rtol=0, atol=1e-8)
    # the worst case moves against the label: along -y theta
    move = z - x
    cos = (move @ -theta) * y / (move.norm(dim=1) * a)
    assert bool((cos > 0.999).all())


@pytest.mark.parametrize("seed", [0, 1])
def test_hinge_closed_form_equals_ascent_where_the_hinge_is_active(seed: int) -> None:
    theta, x, y = _problem(seed)
    a = theta.norm()
    gamma = float(a**2)
    mu = y * (x @ theta)
    phi, _ = _ascent(theta, x, y, "hinge", gamma)
    closed = robust_hinge_linear(mu, a, gamma)
    active = mu < 1
    assert bool(active.any()) and bool((~active).any())
    torch.testing.assert_close(closed[active], phi[active], rtol=0, atol=1e-8)
    # where it is inactive the ascent cannot move (zero gradient) and the closed form is larger
    assert bool((closed[~active] >= phi[~active]).all())


def test_closed_forms_equal_a_brute_force_line_search() -> None:
    theta, x, y = _problem(3, n=20)
    a, mu = float(theta.norm()), y * (x @ theta)
    for gamma in (0.3, 1.0, 4.0):
        torch.testing.assert_close(
            robust_zero_one_linear(mu, a, gamma),
            _line_search(lambda m: (m <= 0).double(), mu, a, gamma),
            rtol=0,
            atol=1e-3,  # the grid lands just past the jump at t = mu / a: 2 gamma t dt
        )
        torch.testing.assert_close(
            robust_hinge_linear(mu, a, gamma),
            _line_search(lambda m: F.relu(1 - m), mu, a, gamma),
            rtol=0,
            atol=1e-6,
        )
        if gamma > a**2 / 8:
            torch.testing.assert_close(
                robust_logistic_linear(mu, a, gamma),
                _line_search(lambda m: F.softplus(-m), mu, a, gamma),
                rtol=0,
                atol=1e-8,
            )


def test_zero_one_ascent_never_moves() -> None:
    """The 0-1 loss has zero gradient: gradient ascent stays at x (why the closed form exists)."""
    theta, x, y = _problem(4)
    lin = _linear(theta)

    def zero_one(scores: Tensor, target: Tensor) -> Tensor:
        return (target * scores[:, 0] <= 0).double() + 0 * scores[:, 0]

    _phi, z = robust_surrogate(
        lin, x, y, zero_one, 1.0, steps=50, step_size=0.1, schedule="constant"
    )
    torch.testing.assert_close(z, x, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["hinge", "zero_one", "logistic"])
def test_robust_loss_is_at_least_the_loss_at_x_and_nonincreasing_in_gamma(kind: str) -> None:
    theta, x, y = _problem(5, n=40)
    mu, a = y * (x @ theta), theta.norm()
    plain = {"hinge": F.relu(1 - mu), "zero_one": (mu <= 0).double(), "logistic": F.softplus(-mu)}[
        kind
    ]
    gammas = [float(a**2) * s for s in (0.2, 0.5, 1.0, 2.0, 10.0, 100.0)]
    prev = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in gammas:
            phi = LinearRobustLoss(kind, g, reduction="none")(mu, a)
            assert bool((phi >= plain - 1e-12).all())
            if prev is not None:
                assert bool((phi <= prev + 1e-12).all())
            prev = phi
    inf = LinearRobustLoss(kind, float("inf"), reduction="none")(mu, a)
    torch.testing.assert_close(inf, plain, rtol=0, atol=1e-12)
    big = LinearRobustLoss(kind, 1e12, reduction="none")(mu, a)
    torch.testing.assert_close(big, plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["hinge", "logistic"])
def test_danskin_closed_form_gradient_is_the_loss_gradient_at_the_worst_point(kind: str) -> None:
    theta0, x, y = _problem(6)
    a0 = float(theta0.norm())
    gamma = a0**2  # above the logistic threshold a^2/8
    theta = theta0.clone().requires_grad_(True)
    fn = robust_hinge_linear if kind == "hinge" else robust_logistic_linear
    fn(y * (x @ theta), theta.norm(), gamma).sum().backward()
    assert theta.grad is not None
    # z* = x - y t* theta/||theta||, t* = ||theta||/(2 gamma) (hinge, where active) or Newton's
    mu = (y * (x @ theta0)).detach()
    if kind == "hinge":
        t = torch.full_like(mu, a0 / (2 * gamma))
        active = (1 - mu + a0**2 / (4 * gamma)) > 0
    else:
        t = torch.zeros_like(mu)
        for _ in range(200):  # fixed point of t = a sigma(a t - mu) / (2 gamma): a contraction here
            t = a0 * torch.sigmoid(a0 * t - mu) / (2 * gamma)
        active = torch.ones_like(mu, dtype=torch.bool)
    z = x - (y * t)[:, None] * theta0[None] / a0
    th = theta0.clone().requires_grad_(True)
    point = F.relu(1 - y * (z @ th)) if kind == "hinge" else F.softplus(-y * (z @ th))
    (point * active).sum().backward()
    assert th.grad is not None
    torch.testing.assert_close(theta.grad, th.grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["hinge", "logistic", "zero_one"])
def test_closed_form_gradcheck_in_theta(kind: str) -> None:
    theta0, x, y = _problem(7, n=6)
    fn = {
        "hinge": robust_hinge_linear,
        "logistic": robust_logistic_linear,
        "zero_one": robust_zero_one_linear,
    }[kind]
    gamma = float(theta0.norm() ** 2)

    def f(th: Tensor) -> Tensor:
        return fn(y * (x @ th), th.norm(), gamma)

    assert torch.autograd.gradcheck(f, (theta0.clone().requires_grad_(True),), eps=1e-6, atol=1e-6)


def test_iterative_module_theta_gradient_matches_the_closed_form() -> None:
    theta0, x, y = _problem(8)
    gamma = float(theta0.norm() ** 2)
    lin = _linear(theta0)
    phi, _ = robust_surrogate(
        lin, x, y, "logistic", gamma, steps=3000, step_size=0.1 / (2 * gamma), schedule="constant"
    )
    phi.sum().backward()
    theta = theta0.clone().requires_grad_(True)
    robust_logistic_linear(y * (x @ theta), theta.norm(), gamma).sum().backward()
    assert lin.weight.grad is not None and theta.grad is not None
    torch.testing.assert_close(lin.weight.grad[0], theta.grad, rtol=0, atol=1e-4)


def test_logistic_warns_below_the_concavity_threshold() -> None:
    with pytest.warns(UserWarning, match="concave"):
        robust_logistic_linear(torch.tensor([0.5, -0.2], dtype=torch.float64), 4.0, 1.0)


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda: robust_hinge_linear(torch.zeros(3), 1.0, 0.0), ValueError, "gamma"),
        (lambda: robust_hinge_linear(torch.zeros(3), 1.0, -1.0), ValueError, "gamma"),
        (
            lambda: robust_hinge_linear(torch.zeros(3, dtype=torch.long), 1.0, 1.0),
            TypeError,
            "margin",
        ),
        (
            lambda: robust_hinge_linear(torch.tensor([0.0, float("nan")]), 1.0, 1.0),
            ValueError,
            "margin",
        ),
        (lambda: robust_hinge_linear(torch.zeros(3), torch.ones(2), 1.0), ValueError, "w_norm"),
        (lambda: robust_hinge_linear(torch.zeros(3), -1.0, 1.0), ValueError, "w_norm"),
        (lambda: robust_zero_one_linear(torch.zeros(0), 1.0, 1.0), ValueError, "margin"),
        (lambda: LinearRobustLoss("squared"), ValueError, "kind"),
    ],
)
def test_bad_closed_form_input_gets_a_clear_error(
    call: object, err: type[Exception], match: str
) -> None:
    with pytest.raises(err, match=match):
        call()  # type: ignore[operator]
