"""The smooth adversarial comp-sum loss and its regulariser."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.compsum import (
    SmoothAdvCompSumLoss,
    comp_sum_loss,
    logit_difference_distance,
    logit_differences,
    smooth_adv_comp_sum_loss,
)


def _pair(b: int = 8, n: int = 5, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(b, n, generator=g, dtype=torch.float64)
    h2 = h + torch.randn(b, n, generator=g, dtype=torch.float64)
    return h, h2, torch.randint(0, n, (b,), generator=g)


def test_logit_differences_are_margins_of_the_true_class() -> None:
    h, _, y = _pair()
    d = logit_differences(h, y)
    for i in range(h.shape[0]):
        for k in range(h.shape[1]):
            assert float(d[i, k]) == float(h[i, y[i]] - h[i, k])
    assert bool((d.gather(1, y[:, None]) == 0).all())


def test_loss_equals_per_example_loop() -> None:
    h, h2, y = _pair()
    got = smooth_adv_comp_sum_loss(h, h2, y, tau=1.5, nu=0.7, reduction="none")
    for i in range(h.shape[0]):
        yi = int(y[i])
        term = (1 - h[i].softmax(0)[yi] ** 0.5) / 0.5
        dist = (
            sum(
                float(((h2[i, yi] - h2[i, k]) - (h[i, yi] - h[i, k])) ** 2)
                for k in range(h.shape[1])
            )
            ** 0.5
        )
        assert abs(float(got[i]) - (float(term) + 0.7 * dist)) < 1e-12


def test_logit_scale_divides_the_comp_sum_term() -> None:
    h, h2, y = _pair()
    got = smooth_adv_comp_sum_loss(h, h2, y, 1.0, 0.5, "none", logit_scale=4.0)
    ref = comp_sum_loss(h / 4.0, y, 1.0, "none") + 0.5 * logit_difference_distance(h, h2, y)
    torch.testing.assert_close(got, ref)


def test_regulariser_is_exactly_zero_with_finite_zero_gradient_at_x_prime_equals_x() -> None:
    h, _, y = _pair()
    h = h.requires_grad_(True)
    adv = h.detach().clone().requires_grad_(True)
    reg = logit_difference_distance(h, adv, y)
    assert bool((reg == 0).all())
    loss = smooth_adv_comp_sum_loss(h, adv, y, nu=3.0)
    torch.testing.assert_close(loss, comp_sum_loss(h, y), rtol=0, atol=0)
    loss.backward()
    assert adv.grad is not None and bool((adv.grad == 0).all())
    assert h.grad is not None and bool(torch.isfinite(h.grad).all())
    torch.testing.assert_close(h.grad, torch.autograd.grad(comp_sum_loss(h, y), h)[0])


def test_regulariser_non_negative_and_invariant_to_per_example_constants() -> None:
    h, h2, y = _pair(b=32)
    reg = logit_difference_distance(h, h2, y)
    assert bool((reg >= 0).all())
    c1, c2 = torch.randn(32, 1, dtype=h.dtype), torch.randn(32, 1, dtype=h.dtype)
    torch.testing.assert_close(logit_difference_distance(h + c1, h2 + c2, y), reg)


def test_gradcheck_through_both_logits() -> None:
    h, h2, y = _pair(b=3)
    h.requires_grad_(True)
    h2.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: smooth_adv_comp_sum_loss(a, b, y, 0.5, 0.8, "none"), (h, h2)
    )


@pytest.mark.parametrize("tau", [1.0, 1.5, 2.0])
def test_upper_bounds_the_comp_sum_loss_at_the_perturbed_point_for_nu_at_least_one(
    tau: float,
) -> None:
    h, h2, y = _pair(b=256, seed=1)
    h2 = h + 4 * (h2 - h)
    tilde = smooth_adv_comp_sum_loss(h, h2, y, tau, 1.0, "none")
    assert bool((tilde >= comp_sum_loss(h2, y, tau, "none") - 1e-12).all())


def test_module_equals_functional() -> None:
    h, h2, y = _pair()
    m = SmoothAdvCompSumLoss(0.5, 0.25, "sum", logit_scale=2.0)
    torch.testing.assert_close(
        m(h, h2, y),
        smooth_adv_comp_sum_loss(h, h2, y, 0.5, 0.25, "sum", logit_scale=2.0),
        rtol=0,
        atol=0,
    )
