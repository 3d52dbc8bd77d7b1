"""The closed forms of NoProp against independent formulations (spec section 5)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from paperzoo.noprop import (
    CosineSchedule,
    DiscreteSchedule,
    LearnableSchedule,
    dt_denoise_loss,
    kl_to_standard_normal,
    posterior_coeffs,
)

SCHEDULES = {
    "cosine": CosineSchedule(10).alpha_bar,
    "linear": torch.linspace(0.01, 0.95, 8, dtype=torch.float64),
    "random": torch.sort(torch.rand(12, generator=torch.Generator().manual_seed(3)).double())[0]
    * 0.98
    + 0.01,
}


def _conditioning_reference(abar_prev: float, abar_t: float) -> tuple[float, float, float]:
    """Brute force: build the joint of (z_t, z_{t-1}) | y from the generative noising and
    condition z_t on z_{t-1} with the Gaussian formulas (one coordinate, u_y = 1)."""
    alpha_prev = abar_prev / abar_t
    # (z_t, z_{t-1}) = m + A (eps_1, eps_2): z_t ~ q(z_t|y), z_{t-1} = sqrt(alpha) z_t + ...
    A = torch.tensor(
        [
            [math.sqrt(1 - abar_t), 0.0],
            [math.sqrt(alpha_prev) * math.sqrt(1 - abar_t), math.sqrt(1 - alpha_prev)],
        ],
        dtype=torch.float64,
    )
    m = torch.tensor([math.sqrt(abar_t), math.sqrt(alpha_prev) * math.sqrt(abar_t)], dtype=A.dtype)
    S = A @ A.T
    gain = S[0, 1] / S[1, 1]  # E[z_t | z_{t-1}] = m_t + gain (z_{t-1} - m_{t-1})
    b = float(gain)
    a = float(m[0] - gain * m[1])  # coefficient of u_y (= 1 here)
    c = float(S[0, 0] - S[0, 1] ** 2 / S[1, 1])
    return a, b, c


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_posterior_coeffs_equal_brute_force_gaussian_conditioning(name: str) -> None:
    abar = SCHEDULES[name]
    a, b, c = posterior_coeffs(abar[:-1], abar[1:])
    for t in range(1, abar.shape[0]):
        ra, rb, rc = _conditioning_reference(float(abar[t - 1]), float(abar[t]))
        assert abs(float(a[t - 1]) - ra) < 1e-12
        assert abs(float(b[t - 1]) - rb) < 1e-12
        assert abs(float(c[t - 1]) - rc) < 1e-12


def test_discrete_schedule_coeffs_index_the_right_pair() -> None:
    sched = CosineSchedule(10)
    a, b, c = sched.coeffs(torch.arange(1, 11))
    ra, rb, rc = posterior_coeffs(sched.alpha_bar[:-1], sched.alpha_bar[1:])
    torch.testing.assert_close((a, b, c), (ra, rb, rc), rtol=0, atol=0)
    a3, _, _ = sched.coeffs(3)
    assert float(a3) == float(ra[2])


def _gaussian_kl(m1: Tensor, m2: Tensor, var: float) -> Tensor:
    e = m1.shape[-1]
    cov = var * torch.eye(e, dtype=torch.float64)
    return kl_divergence(MultivariateNormal(m1, cov), MultivariateNormal(m2, cov))


@pytest.mark.parametrize("t", [1, 4, 10])
def test_kl_between_posterior_and_model_is_half_delta_snr_squared_error(t: int) -> None:
    sched = CosineSchedule(10)
    g = torch.Generator().manual_seed(t)
    u_y, u_hat, z_prev = (torch.randn(5, dtype=torch.float64, generator=g) for _ in range(3))
    a, b, c = (float(v) for v in sched.coeffs(t))
    kl = _gaussian_kl(a * u_y + b * z_prev, a * u_hat + b * z_prev, c)
    d_snr = float(sched.snr[t] - sched.snr[t - 1])
    closed = 0.5 * d_snr * float((u_hat - u_y).pow(2).sum())
    assert float(kl) == pytest.approx(closed, rel=1e-9)
    # the DT denoise term is T * eta * that KL
    loss = dt_denoise_loss(u_hat[None], u_y[None], sched.snr[t], sched.snr[t - 1], 10, 0.1)
    assert float(loss) == pytest.approx(10 * 0.1 * closed, rel=1e-9)
    assert a * a / c == pytest.approx(d_snr, rel=1e-9)


def test_dt_denoise_loss_matches_a_per_example_loop() -> None:
    g = torch.Generator().manual_seed(0)
    u_hat = torch.randn(7, 4, dtype=torch.float64, generator=g)
    u_y = torch.randn(7, 4, dtype=torch.float64, generator=g)
    snr_t = torch.rand(7, dtype=torch.float64, generator=g) + 2.0
    snr_p = torch.rand(7, dtype=torch.float64, generator=g)
    out = dt_denoise_loss(u_hat, u_y, snr_t, snr_p, T=6, eta=0.3, reduction="none")
    ref = []
    for i in range(7):
        sq = sum((float(u_hat[i, j]) - float(u_y[i, j])) ** 2 for j in range(4))
        ref.append(6 / 2 * 0.3 * (float(snr_t[i]) - float(snr_p[i])) * sq)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=torch.float64))
    total = dt_denoise_loss(u_hat, u_y, snr_t, snr_p, T=6, eta=0.3, reduction="sum")
    mean = dt_denoise_loss(u_hat, u_y, snr_t, snr_p, T=6, eta=0.3, reduction="mean")
    torch.testing.assert_close(total, 7 * mean)


def test_kl_to_standard_normal_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(3, 6, dtype=torch.float64, generator=g)
    var = 0.37
    ours = kl_to_standard_normal(mean, var)
    ref = kl_divergence(Normal(mean, math.sqrt(var)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(ours, ref)


def test_cosine_schedule_matches_the_spec_values_and_increases() -> None:
    sched = CosineSchedule(10)
    want = [1e-4, 0.024, 0.094, 0.203, 0.341, 0.494, 0.647, 0.787, 0.899, 0.972, 0.9999]
    torch.testing.assert_close(
        sched.alpha_bar, torch.tensor(want, dtype=torch.float64), atol=1e-3, rtol=0
    )
    assert bool((sched.alpha_bar[1:] > sched.alpha_bar[:-1]).all())
    assert bool((sched.snr_delta() > 0).all())
    for T in (1, 3, 20, 100):
        s = CosineSchedule(T)
        assert bool((s.snr_delta() > 0).all()) and s.T == T


@pytest.mark.parametrize("seed", range(5))
def test_learnable_schedule_is_monotone_with_positive_snr_derivative(seed: int) -> None:
    torch.manual_seed(seed)
    sched = LearnableSchedule(hidden=16).double()
    t = torch.linspace(0, 1, 501, dtype=torch.float64)
    abar = sched.alpha_bar(t)
    assert bool((abar[1:] > abar[:-1]).all())
    assert bool((sched.snr_prime(t) > 0).all())
    ends = sched.alpha_bar(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach()
    assert float(ends[0]) == pytest.approx(1 / (1 + math.exp(7.0)), rel=1e-9)
    assert float(ends[1]) == pytest.approx(1 / (1 + math.exp(-7.0)), rel=1e-9)
    torch.testing.assert_close(sched.snr(t), abar / (1 - abar))


def test_learnable_schedule_snr_prime_equals_autograd_derivative() -> None:
    torch.manual_seed(0)
    sched = LearnableSchedule(hidden=8).double()
    t = torch.rand(17, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(sched.snr(t).sum(), t)
    torch.testing.assert_close(sched.snr_prime(t.detach()), grad)


def test_learnable_schedule_coeffs_are_the_dt_update_between_two_times() -> None:
    torch.manual_seed(0)
    sched = LearnableSchedule().double()
    s, t = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.45, dtype=torch.float64)
    with torch.no_grad():
        a, b, c = sched.coeffs(s, t)
        ab_s, ab_t = float(sched.alpha_bar(s)), float(sched.alpha_bar(t))
    ra, rb, rc = _conditioning_reference(ab_s, ab_t)
    assert (float(a), float(b), float(c)) == pytest.approx((ra, rb, rc), rel=1e-10)


def test_discrete_schedule_accepts_a_custom_increasing_schedule() -> None:
    sched = DiscreteSchedule(torch.tensor([0.1, 0.5, 0.8]))
    assert sched.T == 2
    assert bool((sched.snr_delta() > 0).all())
