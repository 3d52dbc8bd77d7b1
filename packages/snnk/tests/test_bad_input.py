"""Spec section 9: each bad input gets a clear error naming what is wrong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.snnk import (
    URF,
    Cos,
    FullyBundledNetwork,
    PositiveRandomFeatures,
    SNNKAdapter,
    SNNKLinear,
    bundle,
    param_features,
)


def test_input_last_dim_other_than_in_features() -> None:
    with pytest.raises(ValueError, match=r"SNNKLinear: x: expected shape \(\*, 8\)"):
        SNNKLinear(8, 4, 16)(torch.randn(3, 7))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 8\)"):
        URF("cos", 8, 16).input_features(torch.randn(3, 7))


@pytest.mark.parametrize("bad", [0, -3])
def test_num_features_below_one(bad: int) -> None:
    with pytest.raises(ValueError, match="num_features: expected an integer >= 1"):
        SNNKLinear(8, 4, bad)
    with pytest.raises(ValueError, match="num_features"):
        SNNKAdapter(8, bad)
    with pytest.raises(TypeError, match="num_features"):
        PositiveRandomFeatures(8, 2.5)  # type: ignore[arg-type]


def test_negative_gerf_parameter() -> None:
    with pytest.raises(ValueError, match="M: expected a finite value >= 0"):
        SNNKLinear(8, 4, 16, M=-0.1)
    with pytest.raises(ValueError, match="M:"):
        PositiveRandomFeatures(8, 16, M=-1.0)


def test_unknown_activation() -> None:
    with pytest.raises(
        ValueError,
        match=r"activation: expected one of \['cos', 'sin', 'exp', 'gaussian'\], got 'tanh'",
    ):
        SNNKLinear(8, 4, 16, activation="tanh")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="activation"):
        URF(3, 8, 16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        SNNKAdapter(8, 4, kind="exp")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_input_or_theta_names_the_module(value: float) -> None:
    layer = SNNKLinear(4, 3, 8)
    x = torch.randn(2, 4)
    x[0, 1] = value
    with pytest.raises(ValueError, match="SNNKLinear: x: expected finite values"):
        layer(x)
    with torch.no_grad():
        layer.theta[1, 2] = value
    with pytest.raises(ValueError, match="SNNKLinear: theta: expected finite values"):
        layer(torch.randn(2, 4))


def test_from_linear_with_a_non_linear_or_another_shape() -> None:
    with pytest.raises(TypeError, match="linear: expected an nn.Linear, got Conv1d"):
        SNNKLinear.from_linear(nn.Conv1d(3, 3, 1), "cos", 8)
    layer = SNNKLinear(4, 3, 8)
    with pytest.raises(ValueError, match=r"W: expected shape \(3, 4\)"):
        layer.init_from(nn.Linear(5, 3).weight.detach())


def test_large_inputs_with_prescale_none_raise_instead_of_inf_or_zeros() -> None:
    """exp(g^T x - |x|^2/2) <= exp(|g|^2/2): it overflows float32 when x lines up with a long g
    (d = 400), and a very long x underflows every feature to 0; both raise."""
    layer = SNNKLinear(400, 3, 8, activation="exp", prescale=None, seed=0)
    with pytest.raises(ValueError, match="overflows"):
        layer(layer.features.G[:1].clone())
    with pytest.raises(ValueError, match="underflows to 0"):
        URF("cos", 4, 8, seed=0).input_features(torch.full((1, 4), 200.0))
    assert bool(torch.isfinite(SNNKLinear(400, 3, 8, seed=0)(torch.randn(2, 400))).all())


def test_huge_weights_give_a_non_finite_theta_error() -> None:
    G = torch.randn(8, 4)
    with pytest.raises(ValueError, match="Theta"):
        param_features("cos", torch.full((2, 4), 50.0), None, G)


def test_gaussian_xi_with_large_norm_weights_warns() -> None:
    layer = SNNKLinear(4, 2, 8, activation="gaussian", prescale=None)
    with pytest.warns(RuntimeWarning, match="variance is infinite"):
        layer.init_from(torch.full((2, 4), 0.5))


def test_bundle_with_an_activation_without_random_features() -> None:
    with pytest.raises(ValueError, match=r"mlp\[1\]: the activation Tanh has no random-feature"):
        bundle(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), 8)
    with pytest.raises(TypeError, match="mlp"):
        bundle(nn.Sequential(nn.Linear(3, 4), Cos()), 8)
    with pytest.raises(TypeError, match="mlp: expected an nn.Sequential"):
        bundle(nn.Linear(3, 4), 8)  # type: ignore[arg-type]


def test_fit_closed_form_bad_inputs() -> None:
    net = FullyBundledNetwork(3, 1, 16, depth=2)
    X = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"Y: expected shape \(10,\) or \(10, 1\)"):
        net.fit_closed_form(X, torch.randn(9))
    with pytest.raises(ValueError, match="X: expected a non-empty batch"):
        net.fit_closed_form(X[:0], torch.randn(0))
    with pytest.raises(ValueError, match="ridge: expected a finite value >= 0"):
        net.fit_closed_form(X, torch.randn(10), ridge=-1.0)
    with pytest.raises(ValueError, match="ridge: expected one of"):
        net.fit_closed_form(X, torch.randn(10), ridge="gcv")
    with pytest.raises(ValueError, match=r"FullyBundledNetwork: x: expected shape \(\*, 3\)"):
        net.fit_closed_form(torch.randn(10, 4), torch.randn(10))
