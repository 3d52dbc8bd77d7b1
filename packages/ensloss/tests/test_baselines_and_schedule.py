"""The margin-loss baselines against a per-example loop, and the lambda schedule."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.ensloss import EnsLoss, LambdaResampler, exponential_loss, hinge_loss


@pytest.mark.parametrize("fmt", ["01", "pm1"])
def test_hinge_and_exponential_equal_a_per_example_loop(fmt: str) -> None:
    x = 2 * torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 2, (30,), generator=torch.Generator().manual_seed(1))
    if fmt == "pm1":
        t = 2 * t - 1
    ys = [(2 * float(v) - 1) if fmt == "01" else float(v) for v in t]
    hinge = [max(1.0 - y * float(f), 0.0) for y, f in zip(ys, x, strict=True)]
    expo = [math.exp(-y * float(f)) for y, f in zip(ys, x, strict=True)]
    torch.testing.assert_close(
        hinge_loss(x, t, fmt, "none"),
        torch.tensor(hinge, dtype=torch.float64),  # type: ignore[arg-type]
    )
    torch.testing.assert_close(
        exponential_loss(x, t, fmt, "none"),
        torch.tensor(expo, dtype=torch.float64),  # type: ignore[arg-type]
    )


def test_resampler_draws_lambda_every_period_within_bounds() -> None:
    loss = EnsLoss()
    res = LambdaResampler(loss, period=3, generator=torch.Generator().manual_seed(0))
    seen = [res.step(e) for e in range(1, 13)]
    assert seen[0] == seen[1] == 0.0  # epochs 1, 2 keep the initial lambda
    changes = [e for e in range(1, 12) if seen[e] != seen[e - 1]]
    assert changes == [2, 5, 8, 11]  # epochs 3, 6, 9, 12 (0-based 2, 5, 8, 11)
    assert all(-1.0 <= v <= 1.0 for v in seen)
    again = LambdaResampler(EnsLoss(), 3, generator=torch.Generator().manual_seed(0))
    assert [again.step(e) for e in range(1, 13)] == seen


def test_resampler_with_equal_bounds_fixes_lambda() -> None:
    loss = EnsLoss()
    LambdaResampler(loss, 1, low=0.25, high=0.25).step(1)
    assert loss.lam == 0.25
