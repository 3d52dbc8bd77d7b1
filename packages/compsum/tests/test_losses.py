"""The comp-sum family: special cases, the literal formula, continuity, order, bounds, optimum."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.compsum import (
    CompSumLoss,
    GeneralizedCrossEntropyLoss,
    MAELoss,
    SumExponentialLoss,
    comp_sum_loss,
    comp_sum_phi,
    generalized_cross_entropy_loss,
    logit_differences,
    mae_loss,
    sum_exponential_loss,
)

TAUS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def _data(b: int = 16, n: int = 6, scale: float = 2.0, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = scale * torch.randn(b, n, generator=g, dtype=torch.float64)
    return h, torch.randint(0, n, (b,), generator=g)


def _literal_row(h: Tensor, y: int, tau: float) -> float:
    """Phi^tau(sum_{y' != y} exp(h_y' - h_y)), one example, plain Python floats."""
    u = sum(math.exp(float(h[k] - h[y])) for k in range(h.shape[0]) if k != y)
    if tau == 1.0:
        return math.log(1 + u)
    return ((1 + u) ** (1 - tau) - 1) / (1 - tau)


@pytest.mark.parametrize("tau", TAUS)
def test_vectorised_loss_equals_per_example_literal_formula(tau: float) -> None:
    h, y = _data()
    got = comp_sum_loss(h, y, tau, reduction="none")
    ref = torch.tensor(
        [_literal_row(h[i], int(y[i]), tau) for i in range(h.shape[0])], dtype=h.dtype
    )
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_special_cases_are_the_known_losses() -> None:
    h, y = _data()
    p = h.softmax(1).gather(1, y[:, None]).squeeze(1)
    none = "none"
    torch.testing.assert_close(
        comp_sum_loss(h, y, 1.0, none), F.cross_entropy(h, y, reduction=none)
    )
    torch.testing.assert_close(comp_sum_loss(h, y, 2.0, none), 1 - p)
    torch.testing.assert_close(comp_sum_loss(h, y, 0.0, none), 1 / p - 1)
    torch.testing.assert_close(comp_sum_loss(h, y, 1.5, none), (1 - p**0.5) / 0.5)
    torch.testing.assert_close(sum_exponential_loss(h, y, none), 1 / p - 1)
    torch.testing.assert_close(generalized_cross_entropy_loss(h, y, 0.7, none), (1 - p**0.7) / 0.7)
    torch.testing.assert_close(mae_loss(h, y, none), 1 - p)
    torch.testing.assert_close(
        mae_loss(h, y, none, scale=2), (F.one_hot(y, 6) - h.softmax(1)).abs().sum(1)
    )


def test_aliases_equal_the_family_member() -> None:
    h, y = _data()
    torch.testing.assert_close(SumExponentialLoss()(h, y), CompSumLoss(0.0)(h, y), rtol=0, atol=0)
    torch.testing.assert_close(
        GeneralizedCrossEntropyLoss(0.3)(h, y), CompSumLoss(1.3)(h, y), rtol=0, atol=0
    )
    torch.testing.assert_close(MAELoss()(h, y), CompSumLoss(2.0)(h, y), rtol=0, atol=0)
    torch.testing.assert_close(MAELoss(scale=2)(h, y), 2 * CompSumLoss(2.0)(h, y), rtol=0, atol=0)


@pytest.mark.parametrize("tau", TAUS)
def test_phi_of_u_equals_the_loss(tau: float) -> None:
    h, y = _data()
    u = (h - h.gather(1, y[:, None])).exp().sum(1) - 1.0
    torch.testing.assert_close(comp_sum_phi(u, tau), comp_sum_loss(h, y, tau, "none"))


def test_continuous_at_tau_one() -> None:
    h, y = _data(b=64)
    ce = comp_sum_loss(h, y, 1.0, "none")
    log_p = -ce
    for tau in (1 - 1e-7, 1 + 1e-7):
        gap = (comp_sum_loss(h, y, tau, "none") - ce).abs()
        # exact gap ~ 1e-7 (log p)^2 / 2: the tolerance scales with (log p)^2
        assert bool((gap < 1e-5 * torch.clamp(log_p.square(), min=1.0)).all())
        assert float(gap.max()) < 1e-5 * max(1.0, float(log_p.square().max()))


def test_non_increasing_in_tau() -> None:
    h, y = _data(b=64, scale=3.0)
    taus = torch.linspace(0, 4, 41).tolist()
    vals = torch.stack([comp_sum_loss(h, y, t, "none") for t in taus])
    assert bool((vals[:-1] >= vals[1:] - 1e-12).all())


@pytest.mark.parametrize("tau", [1.25, 1.5, 2.0, 3.0])
def test_bounded_by_one_over_tau_minus_one(tau: float) -> None:
    h, y = _data(b=64, scale=10.0)
    v = comp_sum_loss(h, y, tau, "none")
    assert bool((v >= 0).all()) and bool((v <= 1 / (tau - 1) + 1e-12).all())


@pytest.mark.parametrize("tau", TAUS)
def test_shift_invariant(tau: float) -> None:
    h, y = _data()
    c = torch.randn(h.shape[0], 1, dtype=h.dtype) * 5
    torch.testing.assert_close(
        comp_sum_loss(h + c, y, tau, "none"), comp_sum_loss(h, y, tau, "none")
    )


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5])
def test_bayes_minimiser_is_p_to_one_over_two_minus_tau(tau: float) -> None:
    g = torch.Generator().manual_seed(int(tau * 10))
    p = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    p = p / p.sum()
    h = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    targets = torch.arange(5)
    opt = torch.optim.LBFGS(
        [h],
        lr=1,
        max_iter=500,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def risk() -> Tensor:
        opt.zero_grad()
        r = (p * comp_sum_loss(h.expand(5, 5), targets, tau, "none")).sum()
        r.backward()
        return r

    for _ in range(5):
        opt.step(risk)
    q = p ** (1 / (2 - tau))
    torch.testing.assert_close(h.detach().softmax(0), q / q.sum(), rtol=0, atol=1e-5)
    assert torch.equal(h.detach().argsort(), p.argsort())


@pytest.mark.parametrize("tau", TAUS)
def test_gradcheck(tau: float) -> None:
    h, y = _data(b=4, n=5, scale=1.0)
    h.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: comp_sum_loss(t, y, tau, "none"), (h,))
    u = torch.rand(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: comp_sum_phi(t, tau), (u,))


@pytest.mark.parametrize("tau", [1.0, 1.5, 2.0])
def test_one_lipschitz_in_logit_differences_for_tau_at_least_one(tau: float) -> None:
    h, y = _data(b=256, scale=3.0)
    h2 = h + 3.0 * torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=h.dtype)
    lhs = comp_sum_loss(h2, y, tau, "none") - comp_sum_loss(h, y, tau, "none")
    rhs = (logit_differences(h2, y) - logit_differences(h, y)).norm(dim=1)
    assert bool((lhs <= rhs + 1e-12).all())


def test_sum_exponential_is_not_lipschitz_counter_check() -> None:
    h, y = _data(b=256, scale=3.0)
    h2 = h + 3.0 * torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=h.dtype)
    lhs = comp_sum_loss(h2, y, 0.0, "none") - comp_sum_loss(h, y, 0.0, "none")
    rhs = (logit_differences(h2, y) - logit_differences(h, y)).norm(dim=1)
    assert bool((lhs > rhs).any())


@pytest.mark.parametrize("tau", [0.0, 1.0, 1.5])
def test_class_weights_follow_cross_entropy_convention(tau: float) -> None:
    h, y = _data()
    w = torch.rand(6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.5
    per = comp_sum_loss(h, y, tau, "none")
    torch.testing.assert_close(comp_sum_loss(h, y, tau, "none", w), per * w[y])
    torch.testing.assert_close(comp_sum_loss(h, y, tau, "sum", w), (per * w[y]).sum())
    torch.testing.assert_close(comp_sum_loss(h, y, tau, "mean", w), (per * w[y]).sum() / w[y].sum())
    if tau == 1.0:
        torch.testing.assert_close(comp_sum_loss(h, y, tau, "mean", w), F.cross_entropy(h, y, w))


def test_large_gaps_stay_finite_for_bounded_members_in_float32() -> None:
    h = torch.tensor([[0.0, 200.0, -200.0]])
    y = torch.tensor([0])
    for tau in (1.0, 1.5, 2.0, 3.0):
        v = comp_sum_loss(h, y, tau)
        assert bool(torch.isfinite(v))
    torch.testing.assert_close(comp_sum_loss(h, y, 2.0), torch.tensor(1.0))
    assert math.isinf(float(comp_sum_loss(h, y, 0.0)))  # e^200 overflows float32: the loss itself


def test_module_weight_is_a_buffer_that_follows_dtype() -> None:
    loss = CompSumLoss(0.5, weight=torch.ones(6)).double()
    h, y = _data()
    assert loss.weight is not None and loss.weight.dtype == torch.float64
    torch.testing.assert_close(loss(h, y), comp_sum_loss(h, y, 0.5))
