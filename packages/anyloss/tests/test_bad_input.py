"""Spec section 9: each bad input gets a clear error naming the argument."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from paperzoo.anyloss import (
    AnyLoss,
    HybridAnyLoss,
    OneVsRestAnyLoss,
    anyloss,
    approximation,
    confusion_metrics,
    one_vs_rest_anyloss,
    soft_confusion,
    weighted_bce,
)

X = torch.randn(6)
Y = torch.tensor([0, 1, 0, 1, 1, 0])


def _functional(**kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda x, y: anyloss(x, y, **kw)


def _module(**kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda x, y: AnyLoss(**kw)(x, y)


BOTH = pytest.mark.parametrize("make", [_functional, _module], ids=["function", "module"])


@BOTH
@pytest.mark.parametrize(
    "bad",
    [
        torch.tensor([0, 1, 2, 0, 1, 0]),
        torch.tensor([0, 1, -1, 0, 1, 0]),
        torch.tensor([0.0, 1, 0.5, 0, 1, 0]),
    ],
)
def test_target_outside_zero_one_raises(make: Callable[..., Any], bad: Tensor) -> None:
    with pytest.raises(ValueError, match=r"target: expected labels in \{0, 1\}"):
        make()(X, bad)


@BOTH
def test_shape_mismatch_raises(make: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="target: expected shape"):
        make()(X, Y[:-1])
    with pytest.raises(ValueError, match="target: expected shape"):
        make()(X, Y.view(2, 3))


@BOTH
def test_multi_column_input_points_to_one_vs_rest(make: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="OneVsRestAnyLoss"):
        make()(torch.randn(6, 3), Y)
    with pytest.raises(ValueError, match="input: expected shape"):
        make()(torch.randn(6, 1, 1), Y)


@BOTH
def test_probabilities_outside_unit_interval_raise(make: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        make(input_type="probs")(torch.tensor([0.1, 0.9, 1.2, 0.3, 0.5, 0.5]), Y)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        make(input_type="probs")(torch.tensor([0.1, 0.9, -0.1, 0.3, 0.5, 0.5]), Y)


@BOTH
@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"L": 0.0}, "L"),
        ({"L": -3.0}, "L"),
        ({"L": float("inf")}, "L"),
        ({"beta": 0.0, "metric": "fbeta"}, "beta"),
        ({"beta": -1.0, "metric": "fbeta"}, "beta"),
        ({"beta": 2.0, "metric": "f1"}, "beta"),
        ({"eps": 0.0}, "eps"),
        ({"collapse_tol": 0.6}, "collapse_tol"),
    ],
)
def test_bad_hyper_parameters_raise_naming_them(
    make: Callable[..., Any], kw: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        make(**kw)(X, Y)


@BOTH
def test_wrong_types_of_hyper_parameters_raise_type_errors(make: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="^L:"):
        make(L="73")(X, Y)
    with pytest.raises(TypeError, match="^gmean_sqrt:"):
        make(gmean_sqrt=1)(X, Y)
    with pytest.raises(TypeError, match="^metric:"):
        make(metric=3)(X, Y)


@BOTH
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_input_raises(make: Callable[..., Any], value: float) -> None:
    x = X.clone()
    x[2] = value
    with pytest.raises(ValueError, match="input: expected finite"):
        make()(x, Y)


@BOTH
def test_empty_batch_raises(make: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        make()(X[:0], Y[:0])


@BOTH
def test_unknown_metric_name_raises(make: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="^metric: expected one of"):
        make(metric="mcc")(X, Y)


@BOTH
def test_callable_metric_returning_a_non_tensor_or_non_scalar_raises(
    make: Callable[..., Any],
) -> None:
    with pytest.raises(TypeError, match="metric: the callable must return a Tensor"):
        make(metric=lambda tn, fp, fn, tp: float(tp))(X, Y)
    with pytest.raises(ValueError, match="metric: the callable must return one value"):
        make(metric=lambda tn, fp, fn, tp: torch.stack([tp, tn]))(X, Y)


@BOTH
@pytest.mark.parametrize("reduction", ["none", "sum", "avg"])
def test_reduction_other_than_mean_raises(make: Callable[..., Any], reduction: str) -> None:
    with pytest.raises(ValueError, match="^reduction:"):
        make(reduction=reduction)(X, Y)


@BOTH
def test_other_argument_errors(make: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="input: expected a floating-point"):
        make()(Y, Y)
    with pytest.raises(TypeError, match="target: expected a torch.Tensor"):
        make()(X, [0, 1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="^input_type:"):
        make(input_type="scores")(X, Y)
    with pytest.raises(ValueError, match="^zero_division:"):
        make(zero_division="nan")(X, Y)


def test_validate_false_skips_the_value_checks_only() -> None:
    x = X.clone()
    x[0] = float("nan")
    assert torch.isnan(anyloss(x, Y, validate=False))  # documented: no host sync, no check
    with pytest.raises(ValueError, match="target: expected shape"):  # shapes are always checked
        anyloss(X, Y[:-1], validate=False)


def test_one_vs_rest_bad_input() -> None:
    logits = torch.randn(6, 3)
    t = torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"target: expected labels in \[0, 3\)"):
        one_vs_rest_anyloss(logits, torch.tensor([0, 1, 3, 0, 1, 2]))
    with pytest.raises(TypeError, match="target: expected an integer dtype"):
        one_vs_rest_anyloss(logits, t.float())
    with pytest.raises(ValueError, match="input: expected shape"):
        one_vs_rest_anyloss(torch.randn(6), t)
    with pytest.raises(ValueError, match="num_classes"):
        OneVsRestAnyLoss("f1", 4)(logits, t)
    with pytest.raises(ValueError, match="^num_classes:"):
        OneVsRestAnyLoss("f1", 1)


def test_extension_and_helper_bad_input() -> None:
    with pytest.raises(ValueError, match="^r:"):
        HybridAnyLoss("f1", r=1.5)
    with pytest.raises(ValueError, match=r"target: expected labels in \{0, 1\}"):
        weighted_bce(X, torch.tensor([0, 1, 2, 0, 1, 0]))
    with pytest.raises(ValueError, match="^L:"):
        approximation(torch.rand(3), L=0.0)
    with pytest.raises(TypeError, match="^p:"):
        approximation(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="target: expected the shape"):
        soft_confusion(torch.rand(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"target: expected labels in \{0, 1\}"):
        confusion_metrics(torch.rand(3), torch.tensor([0, 1, 2]))
