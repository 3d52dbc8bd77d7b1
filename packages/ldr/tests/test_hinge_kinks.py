"""Crammer-Singer and Weston-Watkins at their kinks: values and subgradients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from paperzoo.ldr import (
    crammer_singer_loss,
    ldr_kl_loss,
    weston_watkins_loss,
)


def _kink_rows() -> tuple[Tensor, Tensor]:
    """Rows at the hinges' kinks (margin 1, integers, so the ties are exact in float64)."""
    f = torch.tensor(
        [
            [1.0, 0.0, 0.0, -2.0],  # y=0: two hinge terms exactly at 0, CS max tied with z_y = 0
            [0.0, 3.0, 3.0, 1.0],  # y=1: z = (-2, 0, 1, -1): one at the kink, CS max unique
            [2.0, 2.0, 2.0, 2.0],  # y=2: all equal, every hinge term = 1 (CS ties everywhere)
            [0.0, 1.0, 1.0, 0.0],  # y=3: z = (1, 2, 2, 0): CS max tied between two classes
        ],
        dtype=torch.float64,
    )
    return f, torch.tensor([0, 1, 2, 3])


@pytest.mark.parametrize("fn", [crammer_singer_loss, weston_watkins_loss])
def test_hinge_gradients_at_kinks_are_subgradients(fn: Callable[..., Tensor]) -> None:
    """Convexity: l(f + d) >= l(f) + <g, d> for every d when g is a subgradient at f."""
    f, y = _kink_rows()
    x = f.clone().requires_grad_(True)
    fn(x, y, 1.0, reduction="sum").backward()
    assert x.grad is not None
    g = torch.Generator().manual_seed(0)
    base = fn(f, y, 1.0, reduction="none")
    for _ in range(200):
        d = 1e-3 * torch.randn(f.shape, generator=g, dtype=torch.float64)
        moved = fn(f + d, y, 1.0, reduction="none")
        assert bool((moved - base >= (x.grad * d).sum(dim=1) - 1e-12).all())


def test_crammer_singer_values_at_kinks() -> None:
    f, y = _kink_rows()
    torch.testing.assert_close(
        crammer_singer_loss(f, y, 1.0, reduction="none"),
        torch.tensor([0.0, 1.0, 1.0, 2.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        weston_watkins_loss(f, y, 1.0, reduction="none"),
        torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64),
    )


def test_crammer_singer_kink_gradient_is_the_small_lambda_limit_of_ldr_kl() -> None:
    """At ties, LDR-KL's gradient softmax(z/lam) - e_y splits evenly between the tied maxima for
    every lam; Crammer-Singer (its lam -> 0 limit) returns that same subgradient."""
    f, y = _kink_rows()
    cs = f.clone().requires_grad_(True)
    crammer_singer_loss(cs, y, 1.0, reduction="sum").backward()
    ldr = f.clone().requires_grad_(True)
    ldr_kl_loss(ldr, y, 1e-3, 1.0, "none", reduction="sum").backward()
    assert cs.grad is not None and ldr.grad is not None
    torch.testing.assert_close(cs.grad, ldr.grad, atol=1e-9, rtol=0)
