"""Spec section 9: every bad input gets a clear ValueError/TypeError naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from paperzoo.af_kan import (
    AFKAN,
    MLP,
    RBFKAN,
    AFKANLayer,
    BSplineKAN,
    BSplineKANLayer,
    RBFKANLayer,
    ReLUKAN,
    ReLUKANLayer,
    af_basis,
    estimate_flops,
    grid,
    l2mm,
)


@pytest.mark.parametrize("layer", [AFKANLayer(5, 3), ReLUKANLayer(5, 3), AFKAN([5, 4, 3])])
def test_wrong_last_dim_is_rejected_with_both_sizes(layer: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"in_features=5.*\(2, 4\)"):
        layer(torch.zeros(2, 4))


@pytest.mark.parametrize("layer", [AFKANLayer(5, 3), ReLUKANLayer(5, 3)])
def test_one_dim_input_is_rejected(layer: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="at least 2 dims"):
        layer(torch.zeros(5))


@pytest.mark.parametrize("layer", [AFKANLayer(5, 3), ReLUKANLayer(5, 3)])
def test_empty_batch_is_rejected(layer: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        layer(torch.zeros(0, 5))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("layer", [AFKANLayer(5, 3), ReLUKANLayer(5, 3)])
def test_non_finite_input_is_rejected_naming_the_layer(
    layer: torch.nn.Module, value: float
) -> None:
    x = torch.zeros(2, 5)
    x[1, 2] = value
    with pytest.raises(
        ValueError, match=r"(AFKANLayer|ReLUKANLayer)\(5 -> 3\): input x: expected finite values"
    ):
        layer(x)


def test_validate_false_skips_the_checks() -> None:
    x = torch.zeros(2, 5)
    x[0, 0] = float("nan")
    assert torch.isnan(AFKANLayer(5, 3, validate=False)(x)).any()


def test_integer_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        AFKANLayer(5, 3)(torch.zeros(2, 5, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"grid_size": 0}, "grid_size"),
        ({"order": -1}, "order"),
        ({"activation": "swish"}, "activation"),
        ({"func": "quad3"}, "func"),
        ({"method": "self_attn"}, "method"),
        ({"norm": "group"}, "norm"),
        ({"func_norm": "global"}, "func_norm"),
        ({"func_norm": True}, "func_norm"),
    ],
)
def test_bad_af_kan_arguments_are_named(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AFKANLayer(5, 3, **kwargs)


def test_a_non_integer_grid_size_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="grid_size: expected an integer >= 1, got float"):
        AFKANLayer(5, 3, grid_size=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"grid_size": 0}, "grid_size"), ({"order": -2}, "order"), ({"norm": "instance"}, "norm")],
)
def test_bad_relu_kan_arguments_are_named(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ReLUKANLayer(5, 3, **kwargs)


@pytest.mark.parametrize(
    "layer", [AFKANLayer(5, 3, norm="batch"), ReLUKANLayer(5, 3, norm="batch")]
)
def test_batchnorm_with_one_row_in_training_is_rejected(layer: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"norm='batch'.*2 rows"):
        layer(torch.rand(1, 5))
    layer.eval()
    assert layer(torch.rand(1, 5)).shape == (1, 3)


@pytest.mark.parametrize("model", [AFKAN, ReLUKAN, MLP])
@pytest.mark.parametrize("layers", [[784], [], [784, 0, 10], [784, -3]])
def test_bad_layer_widths_are_rejected(model: type[torch.nn.Module], layers: list[Any]) -> None:
    with pytest.raises(ValueError, match="layers"):
        model(layers)


@pytest.mark.parametrize("model", [AFKAN, ReLUKAN, MLP])
def test_a_non_integer_layer_width_is_a_type_error(model: type[torch.nn.Module]) -> None:
    with pytest.raises(TypeError, match=r"layers\[1\]: expected an integer >= 1, got float"):
        model([784, 64.0, 10])


def test_layers_as_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="layers"):
        AFKAN("784-64-10")  # type: ignore[arg-type]


def test_functional_helpers_name_their_bad_arguments() -> None:
    with pytest.raises(ValueError, match="grid_size"):
        grid(0, 3)
    with pytest.raises(ValueError, match="order"):
        grid(3, -1)
    start, end = grid(3, 3)
    with pytest.raises(ValueError, match="activation"):
        af_basis(torch.zeros(2, 3), start, end, activation="nope")
    with pytest.raises(ValueError, match="func"):
        af_basis(torch.zeros(2, 3), start, end, func="nope")
    with pytest.raises(ValueError, match="func_norm"):
        l2mm(torch.zeros(2, 3, 4), mode="nope")
    with pytest.raises(ValueError, match="input_shape"):
        estimate_flops(AFKAN([5, 3]), (5,))


_ALL_MODELS = [AFKANLayer, ReLUKANLayer, AFKAN, ReLUKAN, BSplineKAN, RBFKAN, MLP]


def _make(model: type[torch.nn.Module]) -> torch.nn.Module:
    if model in (AFKANLayer, ReLUKANLayer):
        return model(5, 3)
    return model([5, 4, 3])


@pytest.mark.parametrize("model", _ALL_MODELS)
def test_input_dtype_other_than_the_parameters_is_a_type_error(
    model: type[torch.nn.Module],
) -> None:
    layer = _make(model)
    for dtype in (torch.float64, torch.float16):
        with pytest.raises(TypeError, match=rf"input x has dtype {dtype}.*torch.float32"):
            layer(torch.rand(2, 5, dtype=dtype))


@pytest.mark.parametrize("model", _ALL_MODELS)
def test_low_precision_input_is_accepted_under_autocast(model: type[torch.nn.Module]) -> None:
    layer = _make(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.rand(4, 5, dtype=torch.bfloat16))
    assert out.shape == (4, 3) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("model", _ALL_MODELS)
def test_input_on_another_device_is_rejected_naming_both(model: type[torch.nn.Module]) -> None:
    with pytest.raises(ValueError, match=r"input x is on device meta.*parameters are on cpu"):
        _make(model)(torch.rand(2, 5, device="meta"))


@pytest.mark.parametrize("eps", [0.0, -1e-8, float("nan"), float("inf"), "1e-8", True])
def test_bad_eps_is_rejected(eps: Any) -> None:
    with pytest.raises(ValueError, match="eps"):
        AFKANLayer(5, 3, eps=eps)


@pytest.mark.parametrize("layer_cls", [BSplineKANLayer, RBFKANLayer])
@pytest.mark.parametrize("grid_range", ["ab", (1.0,), (1.0, 0.0), (0.0, float("inf")), None])
def test_bad_grid_range_is_named(layer_cls: type[torch.nn.Module], grid_range: Any) -> None:
    with pytest.raises(ValueError, match="grid_range"):
        layer_cls(5, 3, grid_range=grid_range)


@pytest.mark.parametrize("model", [AFKAN, ReLUKAN, BSplineKAN, RBFKAN, MLP])
def test_numpy_integer_widths_are_accepted(model: type[torch.nn.Module]) -> None:
    widths = [np.int64(5), np.int32(4), 3]
    net = model(widths)
    plain = model([5, 4, 3])
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters())
    assert net(torch.rand(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("shape", [(2.5, 5), (True, 5), (2, "5"), (0, 5)])
def test_estimate_flops_rejects_non_integer_shapes(shape: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        estimate_flops(AFKAN([5, 3]), shape)


@pytest.mark.parametrize(
    "model",
    [
        AFKAN([5, 4, 3]),
        ReLUKAN([5, 4, 3]),
        BSplineKAN([5, 4, 3]),
        RBFKAN([5, 4, 3]),
        MLP([5, 4, 3]),
        AFKANLayer(5, 3),
        ReLUKANLayer(5, 3),
        torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU()),
    ],
)
def test_estimate_flops_rejects_an_input_width_that_does_not_match_the_model(
    model: torch.nn.Module,
) -> None:
    with pytest.raises(ValueError, match=r"input_shape: expected last entry 5 .*got \(2, 7\)"):
        estimate_flops(model, (2, 7))
    assert estimate_flops(model, (2, 5)) > 0


def test_estimate_flops_accepts_torch_size_and_numpy_ints() -> None:
    model = AFKAN([5, 3])
    expected = estimate_flops(model, (2, 5))
    assert estimate_flops(model, torch.Size([2, 5])) == expected
    assert estimate_flops(model, (np.int64(2), np.int64(5))) == expected
