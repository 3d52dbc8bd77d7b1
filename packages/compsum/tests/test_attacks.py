"""PGD: the ball, the clamp, ascent, closed forms, torchattacks, robust accuracy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.compsum import (
    PGD,
    cross_entropy_objective,
    logit_diff_distance,
    robust_accuracy,
    trades_kl_objective,
)


def _linear(d: int = 10, n: int = 4, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, n).double()


def _batch(b: int = 16, d: int = 10, n: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, d, generator=g, dtype=torch.float64), torch.randint(
        0, n, (b,), generator=g
    )


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("init", ["normal", "uniform"])
def test_output_stays_in_the_ball_and_the_clamp_range(norm: str, init: str) -> None:
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    x, y = _batch()
    for objective in (logit_diff_distance, cross_entropy_objective, trades_kl_objective):
        x_adv = PGD(0.3, 0.2, 5, norm=norm, init=init, objective=objective).perturb(model, x, y)  # type: ignore[arg-type]
        d = (x_adv - x).flatten(1)
        size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
        assert bool((size <= 0.3 + 1e-9).all())
        assert bool((x_adv >= 0).all()) and bool((x_adv <= 1).all())
        assert not torch.equal(x_adv, x)


def _objective_after(
    attack_steps: int, model: nn.Module, x: Tensor, y: Tensor, **kw: object
) -> Tensor:
    pgd = PGD(steps=attack_steps, generator=torch.Generator().manual_seed(0), **kw)  # type: ignore[arg-type]
    x_adv = pgd.perturb(model, x, y)
    with torch.no_grad():
        obj = kw["objective"]
        return obj(model(x_adv), model(x), y)  # type: ignore[operator, no-any-return]


@pytest.mark.parametrize("objective", [logit_diff_distance, cross_entropy_objective])
def test_ascent_is_monotone_on_a_linear_model(objective: object) -> None:
    """Each sign step of a convex objective of a linear model raises it while no bound is active."""
    model = _linear()
    x, y = _batch()
    x = 0.5 + 0.01 * (x - 0.5)  # the clamp range stays inactive
    kw = {"eps": 0.2, "step_size": 0.01, "clamp": None, "objective": objective, "init": "normal"}
    values = torch.stack([_objective_after(t, model, x, y, **kw) for t in range(6)])
    assert bool((values[1:] >= values[:-1] - 1e-12).all())
    assert bool((values[-1] > values[0]).all())


def test_objective_at_the_result_is_at_least_at_the_start_with_active_projection() -> None:
    model = _linear(seed=1)
    x, y = _batch(seed=1)
    kw = {"eps": 0.05, "step_size": 0.02, "objective": logit_diff_distance, "init": "normal"}
    start = _objective_after(0, model, x, y, **kw)
    end = _objective_after(10, model, x, y, **kw)
    assert bool((end >= start - 1e-12).all())


def test_two_class_linear_model_reaches_the_closed_form_maximiser() -> None:
    model = _linear(d=6, n=2)
    x, y = _batch(d=6, n=2)
    x = 0.5 + 0.1 * (x - 0.5)
    x_adv = PGD(0.05, 0.02, 10, init="none", clamp=None, objective=cross_entropy_objective).perturb(
        model, x, y
    )
    w = model.weight.detach()
    direction = torch.sign(w[1 - y] - w[y])
    torch.testing.assert_close(x_adv, x + 0.05 * direction, rtol=0, atol=1e-12)


def test_logit_difference_objective_has_zero_gradient_at_x() -> None:
    model = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    x, y = _batch()
    x = x.clone().requires_grad_(True)
    with torch.no_grad():
        clean = model(x)
    value = logit_diff_distance(model(x), clean, y).sum()
    (g,) = torch.autograd.grad(value, x)
    assert bool(torch.isfinite(g).all()) and bool((g == 0).all())
    with pytest.raises(ValueError, match="init"):
        PGD(0.1, 0.01, 5, init="none", objective=logit_diff_distance)


def test_attack_runs_in_eval_mode_and_restores_the_mode() -> None:
    model = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.Linear(8, 4)).double()
    model.train()
    before = model[1].running_mean.clone()  # type: ignore[union-attr]
    x, y = _batch()
    PGD(0.1, 0.05, 3).perturb(model, x, y)
    assert model.training
    torch.testing.assert_close(model[1].running_mean, before, rtol=0, atol=0)  # type: ignore[union-attr]


def test_parameters_get_no_gradient_from_the_attack() -> None:
    model = _linear()
    x, y = _batch()
    PGD(0.1, 0.05, 3).perturb(model, x, y)
    assert all(p.grad is None for p in model.parameters())


def test_inputs_outside_the_clamp_range_warn() -> None:
    model = _linear()
    x, y = _batch()
    with pytest.warns(UserWarning, match="outside the declared clamp range"):
        PGD(0.1, 0.05, 1).perturb(model, x * 255, y)


def test_robust_accuracy_is_worst_case_over_attacks() -> None:
    model = _linear()
    x, y = _batch(b=64)
    loader = [(x[:32], y[:32]), (x[32:], y[32:])]
    clean = robust_accuracy(model, loader, None)
    with torch.no_grad():
        assert clean == float((model(x).argmax(1) == y).double().mean())
    a1 = PGD(0.1, 0.05, 3, init="none", objective=cross_entropy_objective)
    a2 = PGD(0.1, 0.05, 3, init="uniform", objective=cross_entropy_objective)
    both = robust_accuracy(model, loader, [a1, a2])
    assert (
        both <= min(robust_accuracy(model, loader, a1), robust_accuracy(model, loader, a2)) <= clean
    )


def test_matches_torchattacks_pgd_without_random_start() -> None:
    torchattacks = pytest.importorskip("torchattacks")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 10, generator=g), torch.randint(0, 4, (64,), generator=g)
    ours = PGD(0.1, 0.02, 10, init="none", objective=cross_entropy_objective)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=10, random_start=False)
    x_ours = ours.perturb(model, x, y)
    x_theirs = theirs(x, y)
    torch.testing.assert_close(x_ours, x_theirs, rtol=0, atol=0)
    loader = [(x, y)]
    with torch.no_grad():
        acc_theirs = float((model(x_theirs).argmax(1) == y).float().mean())
    assert robust_accuracy(model, loader, ours) == acc_theirs


def test_trades_kl_objective_is_the_per_example_kl() -> None:
    g = torch.Generator().manual_seed(0)
    a, c = (
        torch.randn(5, 4, generator=g, dtype=torch.float64),
        torch.randn(5, 4, generator=g, dtype=torch.float64),
    )
    y = torch.zeros(5, dtype=torch.long)
    ref = F.kl_div(a.log_softmax(1), c.softmax(1), reduction="none").sum(1)
    torch.testing.assert_close(trades_kl_objective(a, c, y), ref)
