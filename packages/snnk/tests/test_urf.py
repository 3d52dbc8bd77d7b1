"""Universal random features: exact expectations (quadrature), unbiasedness, 1/m error decay, GERF."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor

from paperzoo.snnk import (
    GAUSSIAN,
    URF,
    PositiveRandomFeatures,
    SpectralSpec,
    activation_function,
    param_features,
    positive_features,
)
from paperzoo.snnk.features import positive_log_features

KINDS = ["cos", "sin", "exp", "gaussian"]


def _quadrature(M: float, n: int) -> tuple[Tensor, Tensor]:
    """Nodes and weights of E_{g ~ N(0,1)}[h(g)] through N(0, 1/(1+4M)) times the density ratio."""
    t, w = np.polynomial.hermite_e.hermegauss(n)
    s = 1.0 / math.sqrt(1.0 + 4.0 * M)
    g = s * t
    ratio = s * np.exp(2.0 * M * g**2)  # N(0,1) density / N(0, s^2) density
    return torch.from_numpy(g), torch.from_numpy(w / math.sqrt(2 * math.pi) * ratio)


@pytest.mark.parametrize("M", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("kind", KINDS)
def test_expectation_equals_activation_by_gauss_hermite_quadrature(kind: str, M: float) -> None:
    """d = 1: sum_i w_i Psi_{g_i}(x) Phi_{g_i}(w, b) = f(w x + b) to 1e-10 (no Monte Carlo)."""
    g, wg = _quadrature(M, 40)
    if kind == "gaussian":  # also integrate over xi ~ N(0, 1)
        t, wt = np.polynomial.hermite_e.hermegauss(60)
        xi_n, xi_w = torch.from_numpy(t), torch.from_numpy(wt / math.sqrt(2 * math.pi))
        G = g.repeat_interleave(len(xi_n)).unsqueeze(1)
        xi = xi_n.repeat(len(g))
        weights = wg.repeat_interleave(len(xi_n)) * xi_w.repeat(len(g))
    else:
        G, xi, weights = g.unsqueeze(1), None, wg
    m = G.shape[0]
    for x, w, b in [(0.3, 0.4, 0.2), (-0.5, 0.25, -0.7), (0.8, -0.3, 0.1)]:
        xt = torch.tensor([[x]], dtype=torch.float64)
        W = torch.tensor([[w]], dtype=torch.float64)
        bt = torch.tensor([b], dtype=torch.float64)
        psi = positive_features(xt, G, M)[0]  # (m,), with 1/sqrt(m)
        theta = param_features(kind, W, bt, G, M, xi)[:, 0]  # (m,), with 1/sqrt(m)
        est = (weights * psi * theta * m).sum()
        target = activation_function(kind)(torch.tensor(w * x + b, dtype=torch.float64))  # type: ignore[arg-type]
        assert abs(float(est - target)) < 1e-10, (kind, M, x, w, b, float(est), float(target))


def _unit_ball_pair(d: int, seed: int, radius: float = 0.7) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, d, generator=gen, dtype=torch.float64)
    w = torch.randn(1, d, generator=gen, dtype=torch.float64)
    x = x / x.norm() * radius * 0.9
    w = w / w.norm() * radius * 0.6
    b = torch.tensor([0.3], dtype=torch.float64)
    return x, w, b


def _block_estimates(
    kind: str, x: Tensor, w: Tensor, b: Tensor, m: int, reps: int, M: float = 0.0, seed: int = 0
) -> Tensor:
    """``reps`` independent m-feature estimates of f(w^T x + b) (one URF of reps * m rows)."""
    urf = URF(kind, x.shape[1], m * reps, M=M, seed=seed).double()  # type: ignore[arg-type]
    prod = urf.input_features(x)[0] * urf.param_features(w, b)[:, 0]  # (reps * m,), each / (reps m)
    return prod.view(reps, m).sum(1) * reps


@pytest.mark.parametrize("kind", KINDS)
def test_monte_carlo_mean_is_unbiased_in_d8(kind: str) -> None:
    """200 independent estimates (m = 64) average to f(w^T x + b) within 4 standard errors."""
    x, w, b = _unit_ball_pair(8, 1)
    est = _block_estimates(kind, x, w, b, 64, 200, seed=3)
    target = float(activation_function(kind)(x @ w.T + b))  # type: ignore[arg-type]
    se = float(est.std()) / math.sqrt(len(est))
    assert abs(float(est.mean()) - target) < 4 * se, (float(est.mean()), target, se)


@pytest.mark.parametrize("kind", ["cos", "exp", "gaussian"])
def test_relative_mse_decays_as_one_over_m(kind: str) -> None:
    """log-log slope of the relative MSE against m in {16 ... 4096} lies in [-1.2, -0.8]."""
    x, w, b = _unit_ball_pair(8, 2)
    target = float(activation_function(kind)(x @ w.T + b))  # type: ignore[arg-type]
    ms = [16, 64, 256, 1024, 4096]
    mse = []
    for i, m in enumerate(ms):
        est = _block_estimates(kind, x, w, b, m, 100, seed=10 + i)
        mse.append(float(((est - target) / target).square().mean()))
    slope = np.polyfit(np.log(ms), np.log(mse), 1)[0]
    assert -1.2 <= slope <= -0.8, (slope, mse)


@pytest.mark.parametrize("M", [0.25, 1.0])
def test_gerf_mean_is_unchanged_by_the_gerf_parameter(M: float) -> None:
    x, w, b = _unit_ball_pair(8, 4)
    target = float(torch.cos(x @ w.T + b))
    est = _block_estimates("cos", x, w, b, 64, 400, M=M, seed=5)
    se = float(est.std()) / math.sqrt(len(est))
    assert abs(float(est.mean()) - target) < 4 * se


def test_gerf_in_d1024_underflows_in_float32_and_is_refused() -> None:
    """M = 1, d = 1024: the log-feature exponent is finite (about -600) in float32 and float64,
    but exp underflows to exactly 0 in float32: positive_features raises instead of zeros."""
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(64, 1024, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 1024, generator=gen, dtype=torch.float64) / 1024**0.5
    for dtype in (torch.float32, torch.float64):
        logs = positive_log_features(x.to(dtype), G.to(dtype), 1.0)
        assert bool(torch.isfinite(logs).all()) and float(logs.max()) < -300
    assert bool((positive_features(x, G, 1.0) > 0).all())  # float64 still represents it
    assert bool((positive_log_features(x.float(), G.float(), 1.0).exp() == 0).all())
    with pytest.raises(ValueError, match="underflows"):
        positive_features(x.float(), G.float(), 1.0)
    urf = URF("cos", 1024, 64, M=1.0, seed=0)
    with pytest.raises(ValueError, match="underflows"):
        urf.input_features(x.float())


def test_gaussian_xi_with_large_weights_warns_infinite_variance() -> None:
    urf = URF("gaussian", 4, 16, seed=0).double()
    W = torch.full((2, 4), 0.4, dtype=torch.float64)  # |w|^2 = 0.64 >= 1/2
    with pytest.warns(RuntimeWarning, match="variance is infinite"):
        urf.param_features(W)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        urf.param_features(W * 0.5)  # |w|^2 = 0.16: no warning


def test_param_features_match_a_per_entry_loop_float64() -> None:
    """Theta[i, j] from the closed forms of the module docstring, one entry at a time."""
    gen = torch.Generator().manual_seed(0)
    m, d, l_, M = 6, 3, 4, 0.3
    G = torch.randn(m, d, generator=gen, dtype=torch.float64)
    W = 0.2 * torch.randn(l_, d, generator=gen, dtype=torch.float64)
    b = torch.randn(l_, generator=gen, dtype=torch.float64)
    xi = torch.randn(m, generator=gen, dtype=torch.float64)
    B, logD = math.sqrt(1 + 4 * M), d / 4 * math.log(1 + 4 * M)
    for kind in KINDS:
        theta = param_features(kind, W, b, G, M, xi if kind == "gaussian" else None)
        for i in range(m):
            g = G[i]
            base = math.exp(logD - M * float(g @ g)) / math.sqrt(m)
            for j in range(l_):
                a, nw2, bj = float(g @ W[j]), float(W[j] @ W[j]), float(b[j])
                if kind == "cos":
                    ref = base * math.exp(nw2 / 2) * math.cos(B * a + bj)
                elif kind == "sin":
                    ref = base * math.exp(nw2 / 2) * math.sin(B * a + bj)
                elif kind == "exp":
                    ref = base * math.exp(B * a - nw2 / 2 + bj)
                else:
                    z = float(xi[i])
                    ref = base * math.exp(z * z * nw2 / 2) * math.cos(z * (B * a + bj))
                assert abs(float(theta[i, j]) - ref) < 1e-12 * max(1.0, abs(ref))


def test_positive_features_match_a_per_row_loop_float64() -> None:
    gen = torch.Generator().manual_seed(1)
    m, d, M = 5, 4, 0.5
    G = torch.randn(m, d, generator=gen, dtype=torch.float64)
    x = torch.randn(3, d, generator=gen, dtype=torch.float64)
    out = positive_features(x, G, M)
    B, logD = math.sqrt(1 + 4 * M), d / 4 * math.log(1 + 4 * M)
    for r in range(3):
        for i in range(m):
            e = logD - M * float(G[i] @ G[i]) + B * float(G[i] @ x[r]) - float(x[r] @ x[r]) / 2
            assert abs(float(out[r, i]) - math.exp(e) / math.sqrt(m)) < 1e-12


def test_complex_spectral_weight_gives_sin_from_a_point_measure() -> None:
    """A SpectralSpec with xi = 1 and weight -i (tau = delta_1 / (2i) + ...) reproduces sin."""
    spec = SpectralSpec(
        sample_xi=lambda m, g: torch.ones(m, dtype=torch.float64),
        weight=lambda xi: torch.full_like(xi, -1j, dtype=torch.complex128),
        fn=torch.sin,
        name="sin-as-spectral",
    )
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    W = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(2, generator=gen, dtype=torch.float64)
    a = param_features(spec, W, b, G, 0.0, torch.ones(7, dtype=torch.float64))
    torch.testing.assert_close(a, param_features("sin", W, b, G, 0.0), rtol=1e-12, atol=1e-14)
    assert GAUSSIAN.max_sq_norm == 0.5


def test_same_seed_gives_same_draws_and_buffers_round_trip() -> None:
    a, b = URF("gaussian", 5, 8, seed=7), URF("gaussian", 5, 8, seed=7)
    assert torch.equal(a.G, b.G) and torch.equal(a.xi, b.xi)
    assert not torch.equal(URF("cos", 5, 8, seed=8).G, a.G)
    c = URF("gaussian", 5, 8, seed=1)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.G, a.G) and torch.equal(c.xi, a.xi)
    assert set(a.state_dict()) == {"G", "xi"}


def test_orthogonal_rows_are_orthogonal_within_a_block() -> None:
    f = PositiveRandomFeatures(16, 16, orthogonal=True, seed=0)
    G = f.G.double()
    gram = G @ G.T
    off = gram - torch.diag(torch.diagonal(gram))
    assert float(off.abs().max()) < 1e-4 * float(torch.diagonal(gram).max())


def test_exp_features_equal_performer_softmax_kernel_features() -> None:
    """performer-pytorch's softmax_kernel (normalize_data=True <-> prescale 'd^-1/4') after
    undoing its max subtraction and eps (spec 5); skipped without the bench group."""
    pp = pytest.importorskip("performer_pytorch.performer_pytorch")
    gen = torch.Generator().manual_seed(0)
    d, m, n = 16, 32, 5
    f = PositiveRandomFeatures(d, m, seed=0).double()
    x = torch.randn(1, 1, n, d, generator=gen, dtype=torch.float64)
    theirs = pp.softmax_kernel(x, projection_matrix=f.G.double(), is_query=True, eps=1e-4)
    ratio = m**-0.5
    # theirs = ratio * (exp(data_dash - diag - rowmax) + eps); rowmax over the m features
    xs = x * d**-0.25
    rowmax = (xs @ f.G.double().T).amax(-1, keepdim=True)
    undone = (theirs / ratio - 1e-4) * torch.exp(rowmax)
    ours = f(x[0, 0]) * math.sqrt(m)
    torch.testing.assert_close(undone[0, 0], ours, rtol=1e-9, atol=1e-12)
