"""The random calibrated derivatives: the CC properties, the reference algorithm, seeding, law."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from paperzoo.ensloss import ensloss_derivatives, inverse_box_cox


def _slow_reference(
    z: list[float], e: list[float], lam: float, clip: float, tail_start: float, eps: float
) -> list[float]:
    """The reference algorithm, one example at a time in float64 (obviously correct, slow)."""
    mags = []
    for v in e:
        if lam == 0.0:
            mags.append(math.exp(v))
        else:
            base = max(1.0 + lam * v, 0.0)
            mags.append(math.inf if base == 0.0 and lam < 0 else base ** (1.0 / lam))
    g_sorted = sorted(max(-m, -clip) for m in mags)
    out = []
    for i, zi in enumerate(z):
        rank = sum(1 for j, zj in enumerate(z) if zj < zi or (zj == zi and j < i))
        gi = g_sorted[rank]
        if zi > tail_start:
            gi *= tail_start / zi
        out.append(gi - eps)
    return out


def _draws(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


@pytest.mark.parametrize("batch", [1, 2, 7, 128])
@pytest.mark.parametrize("lam", [0.0, 0.5, -0.5, 1.0])
@pytest.mark.parametrize("tail_start", [1.0, 0.5, 2.0])
def test_derivatives_equal_the_slow_reference_loop(
    batch: int, lam: float, tail_start: float
) -> None:
    z = 3.0 * torch.randn(
        batch, generator=torch.Generator().manual_seed(batch), dtype=torch.float64
    )
    z[: batch // 3] = z[batch // 3 : 2 * (batch // 3)]  # ties
    g = ensloss_derivatives(
        z, lam, 0.8, tail_start, 1e-6, generator=torch.Generator().manual_seed(7)
    )
    ref = _slow_reference(
        z.tolist(), _draws(batch, 7).double().tolist(), lam, 0.8, tail_start, 1e-6
    )
    torch.testing.assert_close(g, torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 2, 7, 128])
@pytest.mark.parametrize("lam", [0.0, 0.7, -0.7])
def test_derivatives_are_calibrated_monotone_and_bounded(batch: int, lam: float) -> None:
    gen = torch.Generator().manual_seed(batch)
    for _ in range(20):
        z = 2.0 * torch.randn(batch, generator=gen, dtype=torch.float64)
        g = ensloss_derivatives(z, lam, generator=gen)
        assert bool((g < 0).all()), "a derivative is not negative (calibration)"
        assert bool((g >= -1.0 - 1e-6 - 1e-12).all()), "a derivative is below -clip - eps"
        order = torch.argsort(z)
        assert bool((g[order].diff() >= 0).all()), "not non-decreasing in the margin (convexity)"
        tail = z > 1.0
        assert bool((g[tail].abs() <= 1.0 / z[tail] + 1e-6 + 1e-12).all()), "tail bound broken"


def test_a_seed_reproduces_exactly_and_seeds_differ() -> None:
    z = torch.randn(64, generator=torch.Generator().manual_seed(0))
    a = ensloss_derivatives(z, generator=torch.Generator().manual_seed(3))
    b = ensloss_derivatives(z, generator=torch.Generator().manual_seed(3))
    c = ensloss_derivatives(z, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_float32_and_float64_margins_get_the_same_random_loss() -> None:
    z = torch.randn(300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g64 = ensloss_derivatives(z, generator=torch.Generator().manual_seed(1))
    g32 = ensloss_derivatives(z.float(), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(g32.double(), g64, rtol=1e-6, atol=1e-7)


def test_half_of_the_draws_are_clipped_and_the_rest_are_truncated_log_normal() -> None:
    batch = 4096
    z = -torch.rand(batch, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = ensloss_derivatives(z, generator=torch.Generator().manual_seed(1))
    clipped = g <= -1.0
    frac = float(clipped.double().mean())
    assert abs(frac - 0.5) <= 4 * math.sqrt(0.25 / batch), f"clipped fraction {frac}"
    u = (g[~clipped].abs() - 1e-6).numpy()

    def cdf(x: np.ndarray) -> np.ndarray:  # log-normal truncated to (0, 1): Phi(log u) / Phi(0)
        return np.asarray(stats.norm.cdf(np.log(x)) / 0.5)

    p = stats.kstest(u, cdf).pvalue
    assert p > 1e-3, f"KS p-value {p}"


def test_inverse_box_cox_limits() -> None:
    e = torch.linspace(-3, 3, 61, dtype=torch.float64)
    torch.testing.assert_close(inverse_box_cox(e, 1.0), (1 + e).clamp_min(0))
    for dtype in (torch.float64, torch.float32):
        near0 = inverse_box_cox(e.to(dtype), 1e-8)
        rel = ((near0.double() - e.exp()) / e.exp()).abs().max()
        assert rel < (1e-6 if dtype == torch.float32 else 1e-7), f"{dtype}: {rel}"
    torch.testing.assert_close(inverse_box_cox(e, 0.0), e.exp())
    e_pow = torch.tensor([-0.5, 0.3, 0.9], dtype=torch.float64)
    torch.testing.assert_close(inverse_box_cox(e_pow, -1.0), (1 - e_pow) ** -1.0)
    big = inverse_box_cox(torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64), -1.0)
    assert bool(torch.isinf(big).all())


def test_negative_lambda_infinities_are_clipped_not_nan() -> None:
    z = torch.randn(512, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = ensloss_derivatives(z, lam=-1.0, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(g).all())
    assert int((_draws(512, 0) >= 1).sum()) > 0  # some draws really were infinite
    assert bool((g >= -1.0 - 1e-6 - 1e-12).all())


@pytest.mark.parametrize("lam", [0.0, 0.5, -0.5])
def test_the_implied_piecewise_linear_loss_is_convex_and_calibrated(lam: float) -> None:
    gen = torch.Generator().manual_seed(11)
    for _ in range(10):
        z = 2.0 * torch.randn(33, generator=gen, dtype=torch.float64)
        z = torch.cat([z, torch.zeros(1, dtype=torch.float64)])  # a margin at 0
        g = ensloss_derivatives(z, lam, generator=gen)
        order = torch.argsort(z)
        slopes = g[order]  # slopes of the implied loss on the sorted margins
        # the implied loss: phi(z_(1)) = 0, phi(z_(k+1)) = phi(z_(k)) + slope_k (z_(k+1) - z_(k))
        zs = z[order]
        phi = torch.cat([torch.zeros(1, dtype=torch.float64), (slopes[:-1] * zs.diff()).cumsum(0)])
        # convex: every chord slope is non-decreasing; calibrated: slope at 0 is negative
        chords = phi.diff() / zs.diff().clamp_min(1e-300)
        keep = zs.diff() > 0
        assert bool((chords[keep].diff() >= -1e-12).all())
        assert float(slopes[zs == 0][0]) < 0
