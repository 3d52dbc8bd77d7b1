"""The analytically solvable model: every method's fixed point, the exact reference iteration, and descent."""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import pytest
import torch

from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.search import RARTS
from paperzoo.rarts.stepper import SearchStepper
from paperzoo.rarts.toy import QuadraticBilevel, mean_loss

C = 2.0


def sgd(lr: float) -> Any:
    return lambda params: torch.optim.SGD(params, lr=lr)


def rarts_stepper(
    model: QuadraticBilevel, lam: float, beta: float, mode: Literal["lagged", "exact"] = "lagged"
) -> RARTS:
    """Plain GD with per-block steps 0.9/L_block: L_w = λ+β, L_y = 1+β, L_α = c+λ."""
    return RARTS(
        model,
        sgd(0.9 / (lam + beta)),
        torch.optim.SGD(model.arch_parameters(), lr=0.9 / (model.c + lam)),
        lam=lam,
        beta=beta,
        alpha_grad=mode,
        loss_fn=mean_loss,
        y_opt_factory=sgd(0.9 / (1.0 + beta)),
        grad_clip=None,
    )


def run_until_still(stepper: SearchStepper, model: QuadraticBilevel, max_steps: int = 5000) -> int:
    """Step until α stops moving (|Δα| < 1e-14 over 25 steps) or ``max_steps``; returns the steps taken."""
    bt, bv = model.train_batch(), model.val_batch()
    prev = float(model.alpha.detach())
    for i in range(1, max_steps + 1):
        stepper.step(bt, bv)
        if i % 25 == 0:
            now = float(model.alpha.detach())
            if abs(now - prev) < 1e-14:
                return i
            prev = now
    return max_steps


def reference_rarts(
    c: float, lam: float, beta: float, steps: int, mode: str, w: float = 0.0, a: float = 0.5
) -> tuple[float, float, float]:
    """Obviously-correct scalar Gauss–Seidel iteration of RARTS on the toy (plain floats)."""
    y = w
    eta_w, eta_y, eta_a = 0.9 / (lam + beta), 0.9 / (1.0 + beta), 0.9 / (c + lam)
    for _ in range(steps):
        if mode == "lagged":
            g_a = c * a - lam * (w - a)  # ∇_α L_val(y, α) + λ ∇_α L_train(w, α), before the updates
            w = w - eta_w * (lam * (w - a) + beta * (w - y))
            y = y - eta_y * ((y - 1.0) + beta * (y - w))
            a = a - eta_a * g_a
        else:
            w = w - eta_w * (lam * (w - a) + beta * (w - y))
            y = y - eta_y * ((y - 1.0) + beta * (y - w))
            a = a - eta_a * (c * a - lam * (w - a))
    return a, w, y


def test_darts_first_order_converges_to_the_wrong_fixed_point_zero() -> None:
    model = QuadraticBilevel(C)
    stepper = DartsFirstOrder(
        model,
        torch.optim.SGD(model.weight_parameters(), lr=0.9),
        torch.optim.SGD(model.arch_parameters(), lr=0.9 / C),
        mean_loss,
        grad_clip=None,
    )
    run_until_still(stepper, model)
    assert abs(float(model.alpha.detach()) - model.darts1_fixed_point()) < 1e-6
    assert abs(float(model.alpha.detach()) - model.bilevel_opt()) > 0.3


@pytest.mark.parametrize("xi", [1.0, 0.5])
@pytest.mark.parametrize("hvp", ["finite_diff", "autograd"])
def test_darts_second_order_fixed_point_is_xi_over_xi_plus_c(xi: float, hvp: Any) -> None:
    model = QuadraticBilevel(C)
    stepper = DartsSecondOrder(
        model,
        torch.optim.SGD(model.weight_parameters(), lr=0.9),
        torch.optim.SGD(model.arch_parameters(), lr=0.9 / (C + xi**2)),
        mean_loss,
        hvp=hvp,
        xi=xi,
        grad_clip=None,
    )
    run_until_still(stepper, model)
    assert abs(float(model.alpha.detach()) - model.darts2_fixed_point(xi)) < 1e-6
    if xi == 1.0:  # exact bilevel hypergradient for this model
        assert abs(float(model.alpha.detach()) - model.bilevel_opt()) < 1e-6


@pytest.mark.parametrize("mode", ["lagged", "exact"])
@pytest.mark.parametrize(("lam", "beta"), [(1.0, 1.0), (2.0, 0.5), (10.0, 10.0)])
def test_rarts_reaches_its_closed_form_stationary_point(mode: Any, lam: float, beta: float) -> None:
    model = QuadraticBilevel(C)
    stepper = rarts_stepper(model, lam, beta, mode)
    run_until_still(stepper, model)
    a, w, y = model.rarts_fixed_point(lam, beta)
    assert abs(float(model.alpha.detach()) - a) < 1e-6
    assert abs(float(stepper.model_w.w.detach()) - w) < 1e-6
    assert abs(float(stepper.model_y.w.detach()) - y) < 1e-6


@pytest.mark.parametrize("mode", ["lagged", "exact"])
def test_rarts_stepper_equals_the_scalar_reference_iteration(mode: str) -> None:
    model = QuadraticBilevel(C)
    lam, beta = 3.0, 7.0
    stepper = rarts_stepper(model, lam, beta, mode)  # type: ignore[arg-type]
    bt, bv = model.train_batch(), model.val_batch()
    for _ in range(200):
        stepper.step(bt, bv)
    a, w, y = reference_rarts(C, lam, beta, 200, mode)
    assert float(model.alpha.detach()) == pytest.approx(a, abs=1e-12)
    assert float(stepper.model_w.w.detach()) == pytest.approx(w, abs=1e-12)
    assert float(stepper.model_y.w.detach()) == pytest.approx(y, abs=1e-12)


def test_large_lambda_and_beta_approach_the_bilevel_optimum() -> None:
    # λ = β = 1e3 needs ~2.4e4 iterations (condition number ~β); the stepper is shown equal to this
    # reference iteration above, so the long run uses the reference.
    a, _, _ = reference_rarts(C, 1e3, 1e3, 30_000, "lagged")
    assert abs(a - 1.0 / (1.0 + C)) < 1e-3
    toy = QuadraticBilevel(C)
    assert abs(a - toy.rarts_fixed_point(1e3, 1e3)[0]) < 1e-8


def test_closed_form_at_huge_lambda_beta_is_stationary_and_near_the_optimum() -> None:
    toy = QuadraticBilevel(C)
    lam = beta = 1e4
    a, w, y = toy.rarts_fixed_point(lam, beta)
    assert abs(a - toy.bilevel_opt()) < 1e-4
    tw, ty, ta = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (w, y, a))
    lagr = toy.l_val(ty, ta) + lam * toy.l_train(tw, ta) + 0.5 * beta * (ty - tw) ** 2
    grads = torch.autograd.grad(lagr, [tw, ty, ta])  # type: ignore[arg-type]
    assert all(abs(float(g)) < 1e-8 for g in grads)


def test_beta_to_infinity_gives_the_single_level_problem() -> None:
    lam, beta = 1.0, 1e3
    a, w, y = reference_rarts(C, lam, beta, 20_000, "lagged")
    toy = QuadraticBilevel(C)
    assert abs(abs(y - w) - C * a / beta) < 1e-8
    assert abs(a - toy.single_level_fixed_point(lam)) < 1e-3


@pytest.mark.parametrize("beta", [0.5, 5.0])
def test_rarts_exact_gauss_seidel_decreases_the_lagrangian_on_the_toy(beta: float) -> None:
    model = QuadraticBilevel(C, w0=-1.0, alpha0=2.0)
    stepper = rarts_stepper(model, 1.5, beta, "exact")
    bt, bv = model.train_batch(), model.val_batch()
    values = [float(stepper.lagrangian(bt, bv).detach())]
    for _ in range(300):
        stepper.step(bt, bv)
        values.append(float(stepper.lagrangian(bt, bv).detach()))
    assert all(b <= a + 1e-14 for a, b in itertools.pairwise(values))
    assert values[-1] < values[0] - 0.1


def test_rarts_exact_decreases_the_lagrangian_on_a_softmax_supernet(softmax_supernet: Any) -> None:
    torch.manual_seed(0)
    model = softmax_supernet()
    g = torch.Generator().manual_seed(1)
    xt, xv = (
        torch.randn(40, 5, generator=g, dtype=torch.float64),
        torch.randn(40, 5, generator=g, dtype=torch.float64),
    )
    yt, yv = torch.randint(0, 3, (40,), generator=g), torch.randint(0, 3, (40,), generator=g)
    stepper = RARTS(
        model,
        sgd(0.05),
        torch.optim.SGD(model.arch_parameters(), lr=0.05),
        lam=1.0,
        beta=1.0,
        y_init="independent",
        alpha_grad="exact",
        grad_clip=None,
    )
    values = [float(stepper.lagrangian((xt, yt), (xv, yv)).detach())]
    for _ in range(60):
        stepper.step((xt, yt), (xv, yv))
        values.append(float(stepper.lagrangian((xt, yt), (xv, yv)).detach()))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] < values[0]


def test_closed_forms_match_their_definitions() -> None:
    toy = QuadraticBilevel(0.5)
    assert toy.bilevel_opt() == pytest.approx(1 / 1.5)
    assert toy.darts2_fixed_point(1.0) == pytest.approx(toy.bilevel_opt())
    assert toy.single_level_fixed_point(1e12) == pytest.approx(toy.bilevel_opt())
    a, _, _ = toy.rarts_fixed_point(1e12, 1e12)
    assert a == pytest.approx(toy.bilevel_opt())
    assert math.isclose(toy.l_val(1.0, 2.0), 0.5 * 0.5 * 4.0)  # type: ignore[arg-type]
