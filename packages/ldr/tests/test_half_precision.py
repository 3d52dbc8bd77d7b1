"""float16/bfloat16 logits are computed in float32 and returned in their own dtype."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from paperzoo.ldr import (
    ALDRKLLoss,
    crammer_singer_loss,
    ldr_kl_loss,
    normalize_scores,
    weston_watkins_loss,
    worst_case_distribution,
)

NORMS = ("softplus_mean", "l1", "softplus_l1", "none")
HALF = (torch.float16, torch.bfloat16)
Y = torch.tensor([0, 1, 2, 4])


def _rows(dtype: torch.dtype) -> Tensor:
    """All-zero, all-equal, very negative and ordinary rows (K = 5), exactly representable."""
    return torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [3.0, 3.0, 3.0, 3.0, 3.0],
            [-30.0, -40.0, -30.0, -35.0, -50.0],
            [1.5, -0.5, 2.0, 0.25, -1.0],
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("normalize", NORMS)
def test_half_precision_extreme_rows_are_finite_and_match_float32(
    dtype: torch.dtype, normalize: str
) -> None:
    """EPS = 1e-12 underflows to 0 in float16 and softplus(-30) too: both gave 0/0 = NaN before
    the losses computed 16-bit inputs in float32. Results keep the input's dtype."""
    losses: list[Callable[[Tensor], Tensor]] = [
        lambda f: ldr_kl_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: crammer_singer_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: weston_watkins_loss(f, Y, normalize=normalize, reduction="none"),
        lambda f: ALDRKLLoss(4, normalize=normalize, reduction="none")(f, Y, torch.arange(4)),
        lambda f: worst_case_distribution(f, Y, normalize=normalize),
        lambda f: normalize_scores(f, normalize),
    ]
    for fn in losses:
        half = _rows(dtype).requires_grad_(True)
        out = fn(half)
        assert out.dtype == dtype
        assert bool(torch.isfinite(out).all())
        full = _rows(torch.float32).requires_grad_(True)
        expected = fn(full)
        torch.testing.assert_close(out.float(), expected.detach().to(dtype).float())
        if out.requires_grad:
            out.float().sum().backward()
            expected.sum().backward()
            assert half.grad is not None and full.grad is not None
            assert half.grad.dtype == dtype
            # 'l1' is scale invariant, so its gradient grows as 1 / mean|f|: at f = 0 it is about
            # 1 / EPS = 1e12 (finite in float32, inf in float16); compare the other rows there.
            rows = slice(1, None) if normalize == "l1" else slice(None)
            assert bool(torch.isfinite(half.grad[rows]).all())
            torch.testing.assert_close(half.grad[rows].float(), full.grad[rows].to(dtype).float())


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("lam", [1e-8, 1e5, 1e6])
def test_half_precision_accepts_lambdas_outside_the_half_range(
    dtype: torch.dtype, lam: float
) -> None:
    """lam > 65504 overflowed float16 (RuntimeError) and lam < 6e-8 became 0 (NaN)."""
    f = _rows(torch.float32)[3:].repeat(4, 1) * torch.arange(1.0, 5.0).unsqueeze(1)
    got = ldr_kl_loss(f.to(dtype), Y, lam=lam, normalize="none", reduction="none")
    expected = ldr_kl_loss(f.to(dtype).float(), Y, lam=lam, normalize="none", reduction="none")
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), expected.to(dtype).float())


def test_float32_is_computed_in_float32_unchanged() -> None:
    """The upcast is a no-op for float32/float64: the value is the plain formula."""
    f = _rows(torch.float32)
    s = f / (f.abs().mean(dim=1, keepdim=True) + 1e-12)
    z = (s - s.gather(1, Y[:, None]) + 0.1).scatter(1, Y[:, None], 0.0)
    expected = 10.0 * (torch.logsumexp(z / 10.0, dim=1) - torch.log(torch.tensor(5.0)))
    got = ldr_kl_loss(f, Y, normalize="l1", reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
