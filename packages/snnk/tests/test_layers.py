"""SNNKLinear: convergence to f(Wx + b), the arc-cosine kernel, gradcheck, parameter counts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from paperzoo.snnk import (
    ReLURandomFeatures,
    SNNKLinear,
    activation_function,
    arccos_kernel,
    relu_features,
    trainable_parameters,
)


def _linear(d: int, l_: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    lin = nn.Linear(d, l_).double()
    with torch.no_grad():
        lin.weight.mul_(0.5)
    return lin


def _inputs(n: int, d: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("activation", ["cos", "sin", "exp", "gaussian"])
def test_from_linear_error_falls_as_m_grows(activation: str) -> None:
    """Relative error of SNNKLinear vs f(Wx + b), mean over 5 seeds, decreases for m 64 -> 4096
    (prescale None, |x| <= 1)."""
    d, l_ = 8, 6
    lin = _linear(d, l_)
    x = _inputs(32, d)
    target = activation_function(activation)(lin(x))  # type: ignore[arg-type]
    errs = []
    for m in (64, 256, 1024, 4096):
        e = []
        for seed in range(5):
            layer = SNNKLinear.from_linear(lin, activation, m, prescale=None, seed=seed)  # type: ignore[arg-type]
            with torch.no_grad():
                e.append(float((layer(x) - target).norm() / target.norm()))
        errs.append(sum(e) / len(e))
    assert all(a > b for a, b in itertools.pairwise(errs)), errs
    assert errs[-1] < 0.05, errs


def test_prescale_d_quarter_targets_the_sqrt_d_scaled_preactivation() -> None:
    d, l_ = 16, 5
    lin = _linear(d, l_)
    x = _inputs(20, d) * 3.0
    layer = SNNKLinear.from_linear(lin, "cos", 8192, prescale="d^-1/4", seed=0)
    target = torch.cos(x @ lin.weight.T / math.sqrt(d) + lin.bias)
    with torch.no_grad():
        err = float((layer(x) - target).norm() / target.norm())
    assert err < 0.05


def test_relu_features_estimate_the_arccos_kernel() -> None:
    """Monte Carlo over 256 blocks of 64 features: within 4 SE of the closed form; x = w gives
    |x|^2 / 2."""
    gen = torch.Generator().manual_seed(0)
    d = 6
    x = torch.randn(1, d, generator=gen, dtype=torch.float64)
    w = torch.randn(1, d, generator=gen, dtype=torch.float64)
    G = torch.randn(256 * 64, d, generator=gen, dtype=torch.float64)
    for v in (w, x):
        prod = relu_features(x, G)[0] * relu_features(v, G)[0]  # each / (256 * 64)
        est = prod.view(256, 64).sum(1) * 256
        exact = float(arccos_kernel(x, v)[0])
        assert abs(float(est.mean()) - exact) < 4 * float(est.std()) / 16
    assert abs(float(arccos_kernel(x, x)[0]) - float(x.square().sum()) / 2) < 1e-12


def test_arccos_kernel_matches_a_per_pair_loop() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    k = arccos_kernel(x, w)
    for i in range(4):
        nx, nw = float(x[i].norm()), float(w[i].norm())
        t = math.acos(max(-1.0, min(1.0, float(x[i] @ w[i]) / (nx * nw))))
        ref = nx * nw * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi)
        assert abs(float(k[i]) - ref) < 1e-12


def test_relu_snnk_layer_is_features_times_relu_features_of_the_weights() -> None:
    lin = _linear(5, 3)
    layer = SNNKLinear.from_linear(lin, "relu", 32, seed=0)
    assert isinstance(layer.features, ReLURandomFeatures)
    x = _inputs(4, 5)
    G = layer.features.G.double()
    torch.testing.assert_close(layer(x), relu_features(x, G) @ relu_features(lin.weight, G).T)


@pytest.mark.parametrize("activation", ["cos", "exp", "relu"])
def test_gradcheck_wrt_input_and_theta(activation: str) -> None:
    layer = SNNKLinear(5, 3, 16, activation=activation, seed=0).double()  # type: ignore[arg-type]
    x = _inputs(4, 5).requires_grad_(True)
    theta = layer.theta.detach().clone().requires_grad_(True)

    def f(xx: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        return layer.input_features(xx) @ th

    assert torch.autograd.gradcheck(f, (x, theta), eps=1e-6, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(f(x, theta), layer(x))


@pytest.mark.parametrize(("m", "l_"), [(8, 16), (32, 256), (64, 3)])
def test_trainable_parameters_are_m_times_l(m: int, l_: int) -> None:
    layer = SNNKLinear(100, l_, m)
    assert trainable_parameters(layer) == m * l_
    assert trainable_parameters(nn.Linear(100, l_)) == 100 * l_ + l_


def test_buffers_are_saved_and_restored_and_seeded() -> None:
    a = SNNKLinear(6, 4, 8, activation="gaussian", seed=3)
    b = SNNKLinear(6, 4, 8, activation="gaussian", seed=3)
    assert torch.equal(a.features.G, b.features.G)
    assert {"theta", "features.G", "features.xi"} == set(a.state_dict())
    c = SNNKLinear(6, 4, 8, activation="gaussian", seed=4)
    c.load_state_dict(a.state_dict())
    x = torch.randn(3, 6)
    torch.testing.assert_close(c(x), a(x), rtol=0, atol=0)
