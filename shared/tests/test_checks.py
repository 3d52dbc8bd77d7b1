"""paperzoo.core.checks: one message style, TypeError for types, ValueError for values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperzoo.core.checks import as_real, check_like


@pytest.mark.parametrize(
    "value", [3, 2.5, np.float32(2.5), np.int64(3), torch.tensor(2.5), torch.tensor([2.5])]
)
def test_reals_and_one_element_tensors_become_floats(value: object) -> None:
    out = as_real("lr", value)
    assert type(out) is float and out == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, "0.1", b"1", None, [1.0], torch.ones(2), object()])
def test_anything_else_is_a_type_error_naming_the_argument(value: object) -> None:
    with pytest.raises(TypeError, match="^lr: expected a real number, got "):
        as_real("lr", value)


def test_check_like_names_device_and_dtype_mismatches() -> None:
    w = torch.zeros(2)
    check_like("x", torch.ones(3), w)  # same device and dtype: nothing
    with pytest.raises(
        ValueError, match=r"^x is on device meta but the layer's parameters are on cpu"
    ):
        check_like("x", torch.ones(3, device="meta"), w, owner="the layer")
    with pytest.raises(
        TypeError, match=r"^x has dtype torch.float64 but the model's parameters are torch.float32"
    ):
        check_like("x", torch.ones(3, dtype=torch.float64), w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check_like("x", torch.ones(3, dtype=torch.bfloat16), w)  # autocast allows the dtype


# ----------------------------------------------------------------------------- the rest of checks
from paperzoo.core.checks import (  # noqa: E402
    REDUCTIONS,
    UserError,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_positive_int,
    check_range,
    check_reduction,
    check_unit_interval,
    reduce,
)


def test_reduce_matches_mean_sum_none() -> None:
    v = torch.tensor([1.0, 2.0, 6.0])
    assert reduce(v, "mean").item() == 3.0 and reduce(v, "sum").item() == 9.0
    assert reduce(v, "none") is v
    assert REDUCTIONS == ("mean", "sum", "none")


@pytest.mark.parametrize("bad", ["average", None, 1, "MEAN"])
def test_unknown_reduction_is_a_value_error_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^reduction: expected one of \('mean', 'sum', 'none'\)"):
        check_reduction(bad)
    with pytest.raises(ValueError, match="^reduction: "):
        reduce(torch.ones(2), bad)  # type: ignore[arg-type]


def test_user_error_is_a_value_error() -> None:
    assert issubclass(UserError, ValueError)


def test_choice_compares_type_and_value() -> None:
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^mode: expected one of \['a', 'b'\], got 'c'"):
        check_choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="^flag: "):
        check_choice("flag", 1, (True, False))  # 1 == True, but it is not a bool


def test_positive_and_positive_int() -> None:
    assert check_positive("lr", 0.5) == 0.5 and check_positive("wd", 0, allow_zero=True) == 0.0
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^lr: expected a finite value > 0"):
            check_positive("lr", bad)
    assert check_positive("t", float("inf"), allow_inf=True) == float("inf")
    with pytest.raises(TypeError, match="^lr: expected a real number"):
        check_positive("lr", "1")
    assert check_positive_int("k", np.int64(3)) == 3
    with pytest.raises(TypeError, match="^k: expected an integer >= 1, got float"):
        check_positive_int("k", 3.0)
    with pytest.raises(TypeError, match="^k: "):
        check_positive_int("k", True)
    with pytest.raises(ValueError, match="^k: expected an integer >= 2, got 1"):
        check_positive_int("k", 1, minimum=2)


def test_unit_interval_and_range() -> None:
    assert check_unit_interval("p", 1.0) == 1.0
    with pytest.raises(ValueError, match=r"^p: expected a value in \(0, 1\)"):
        check_unit_interval("p", 1.0, open_=True)
    with pytest.raises(ValueError, match=r"^p: expected a value in \[0, 1\]"):
        check_unit_interval("p", float("nan"))
    assert check_range("r", (0, 2)) == (0.0, 2.0)
    for bad in ((2, 1), (0, float("inf")), "ab", 3):
        with pytest.raises(ValueError, match="^r: expected"):
            check_range("r", bad)


def test_float_tensor_rank_and_empty() -> None:
    x = torch.zeros(3, 2)
    assert check_float_tensor("x", x, ndim=2, nonempty=True) is x
    with pytest.raises(TypeError, match="^x: expected a torch.Tensor, got list"):
        check_float_tensor("x", [1.0])
    with pytest.raises(
        TypeError, match="^x: expected a floating-point tensor, got dtype torch.int64"
    ):
        check_float_tensor("x", torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^x: expected a 3-D tensor, got shape \(3, 2\)"):
        check_float_tensor("x", x, ndim=3)
    with pytest.raises(ValueError, match=r"^x: expected a non-empty batch, got shape \(0, 2\)"):
        check_float_tensor("x", x[:0], nonempty=True)
    with pytest.raises(ValueError, match="^s: expected a non-empty batch"):
        check_nonempty("s", torch.tensor(1.0))


def test_finite_checks_only_when_validating() -> None:
    x = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="^x: expected finite values, got NaN or inf"):
        check_finite("x", x)
    check_finite("x", x, validate=False)


def test_labels_dtype_rank_length_range_device() -> None:
    y = torch.tensor([0, 2, 1])
    assert check_labels("y", y, n=3, num_classes=3) is y
    with pytest.raises(TypeError, match="^y: expected an integer dtype"):
        check_labels("y", y.float())
    with pytest.raises(TypeError, match="^y: expected an integer dtype"):
        check_labels("y", y.bool())
    with pytest.raises(ValueError, match="^y: expected a 1-D tensor"):
        check_labels("y", y[None])
    with pytest.raises(ValueError, match="^y: expected 4 labels"):
        check_labels("y", y, n=4)
    with pytest.raises(ValueError, match=r"^y: expected labels in \[0, 2\), got range \[0, 2\]"):
        check_labels("y", y, num_classes=2)
    with pytest.raises(ValueError, match=r"^y: expected non-negative labels"):
        check_labels("y", torch.tensor([-1, 0]))
    check_labels("y", torch.tensor([-1, 0]), validate=False)
    with pytest.raises(ValueError, match="^y: expected device meta"):
        check_labels("y", y, like=torch.zeros(3, device="meta"))
