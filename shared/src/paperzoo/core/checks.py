"""The one home of argument and tensor validation for every paperzoo package.

Messages read ``name: expected ..., got ...``. A wrong *type* raises :class:`TypeError`, a wrong
*value* :class:`ValueError`, and a configuration or command-line mistake :class:`UserError` (which
the CLI prints as one ``paperzoo: error:`` line, without a traceback). Checks that need a
host-device synchronisation (finiteness, label ranges) take ``validate``: a loss or layer exposes
``validate=False`` so a tight training loop can skip them.

Example::

    from paperzoo.core.checks import Reduction, check_float_tensor, check_labels, check_reduction, reduce

    def my_loss(logits: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
        check_reduction(reduction)
        check_float_tensor("logits", logits, ndim=2, nonempty=True)
        check_labels("target", target, n=logits.shape[0], num_classes=logits.shape[1])
        return reduce(per_example_losses, reduction)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Final, Literal, TypeVar, get_args

import torch
from torch import Tensor

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "UserError",
    "as_real",
    "check_choice",
    "check_finite",
    "check_float_tensor",
    "check_labels",
    "check_like",
    "check_nonempty",
    "check_positive",
    "check_positive_int",
    "check_range",
    "check_reduction",
    "check_unit_interval",
    "reduce",
]

Reduction = Literal["mean", "sum", "none"]
"""How a loss combines its per-example values: their mean, their sum, or none (shape ``(N,)``)."""

REDUCTIONS: Final[tuple[Reduction, ...]] = get_args(Reduction)

_T = TypeVar("_T")


class UserError(ValueError):
    """A mistake in what a user asked for: an unknown name, a bad ``--set``, a bad config value.

    The CLI prints it as one line and exits with status 2, without a traceback.
    """


# ----------------------------------------------------------------------------- plain values


def check_reduction(reduction: object) -> Reduction:
    """``reduction`` as a :data:`Reduction`.

    Raises:
        ValueError: ``reduction: expected one of ('mean', 'sum', 'none'), got ...``.
    """
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(values: Tensor, reduction: Reduction) -> Tensor:
    """Reduce per-example ``values`` of shape ``(N, ...)``: their mean, sum, or ``values`` as is.

    Raises:
        ValueError: an unknown ``reduction``.
    """
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    check_reduction(reduction)
    raise AssertionError("unreachable")  # pragma: no cover


def check_choice(name: str, value: _T, choices: Collection[_T]) -> _T:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: ``name: expected one of [...], got ...``.
    """
    ok = False
    for c in choices:
        if type(value) is type(c) and value == c:
            ok = True
            break
    if not ok:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def as_real(name: str, value: object) -> float:
    """``value`` as a Python float: a Python/NumPy real or a one-element tensor.

    Raises:
        TypeError: naming ``name``, for anything else (``bool``, ``str``, ``None``, lists,
            tensors of several elements, ...).
    """
    if not isinstance(value, (str, bytes, bool)):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError):
            pass
    raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")


def check_positive(
    name: str, value: object, *, allow_zero: bool = False, allow_inf: bool = False
) -> float:
    """``value`` as a float if it is a real number ``> 0`` (``>= 0`` with ``allow_zero``).

    Raises:
        TypeError: not a real number (a ``bool`` is not one).
        ValueError: NaN, infinite (unless ``allow_inf``), or out of range.
    """
    v = as_real(name, value)
    bad = v < 0 if allow_zero else v <= 0
    if bad or math.isnan(v) or (math.isinf(v) and not allow_inf):
        rel = ">= 0" if allow_zero else "> 0"
        fin = "" if allow_inf else "a finite "
        raise ValueError(f"{name}: expected {fin}value {rel}, got {value!r}")
    return v


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum`` (Python or NumPy, not a bool).

    Raises:
        TypeError: not an integer.
        ValueError: below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_unit_interval(name: str, value: object, *, open_: bool = False) -> float:
    """``value`` as a float in ``[0, 1]`` (``(0, 1)`` with ``open_``).

    Raises:
        TypeError: not a real number; ValueError: outside the interval or NaN.
    """
    v = as_real(name, value)
    ok = 0.0 < v < 1.0 if open_ else 0.0 <= v <= 1.0
    if not ok:
        interval = "(0, 1)" if open_ else "[0, 1]"
        raise ValueError(f"{name}: expected a value in {interval}, got {value!r}")
    return v


def check_range(name: str, value: object) -> tuple[float, float]:
    """``(low, high)`` as floats if ``value`` is a pair of finite numbers with ``high > low``.

    Raises:
        ValueError: anything else.
    """
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (low, high) with high > low, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"{name}: expected finite (low, high) with high > low, got {value!r}")
    return lo, hi


# ----------------------------------------------------------------------------- tensors


def check_float_tensor(
    name: str, x: object, ndim: int | None = None, *, nonempty: bool = False
) -> Tensor:
    """``x`` if it is a floating-point tensor (of rank ``ndim``; with ``nonempty``, dim 0 >= 1).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, or an empty batch with ``nonempty``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(x.shape)}")
    if nonempty:
        check_nonempty(name, x)
    return x


def check_nonempty(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` on an empty batch (a 0-D tensor or first dimension 0)."""
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")


def check_finite(name: str, x: Tensor, *, validate: bool = True) -> None:
    """Raise ``ValueError`` when ``x`` holds NaN or inf (one host sync; skipped unless ``validate``)."""
    if validate and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_labels(
    name: str,
    y: object,
    *,
    n: int | None = None,
    num_classes: int | None = None,
    like: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """``y`` if it is a 1-D integer label tensor of length ``n`` with values in ``[0, num_classes)``.

    Without ``num_classes`` only negative labels are rejected. With ``like`` (the scores the labels
    belong to) ``y`` must be on its device. The range check costs one host sync and runs only when
    ``validate``.

    Raises:
        TypeError: not a tensor, or not an integer dtype (float, bool and complex labels).
        ValueError: wrong rank, wrong length, another device, or a label out of range.
    """
    if not isinstance(y, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of integer labels, got {type(y).__name__}"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer dtype (e.g. torch.long), got {y.dtype}")
    if y.dim() != 1:
        raise ValueError(f"{name}: expected a 1-D tensor of labels, got shape {tuple(y.shape)}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per row), got {y.shape[0]}")
    if like is not None and y.device != like.device:
        raise ValueError(f"{name}: expected device {like.device} (like the scores), got {y.device}")
    if validate and y.numel() > 0:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or (num_classes is not None and hi >= num_classes):
            want = (
                f"labels in [0, {num_classes})"
                if num_classes is not None
                else "non-negative labels"
            )
            raise ValueError(f"{name}: expected {want}, got range [{lo}, {hi}]")
    return y


def check_like(name: str, x: Tensor, like: Tensor, owner: str = "the model") -> None:
    """``x`` must be on ``like``'s device and have its dtype (``like``: a parameter of ``owner``).

    A dtype difference is allowed inside ``torch.autocast`` for ``x``'s device type.

    Raises:
        ValueError: another device; TypeError: another dtype outside autocast. Both name ``name``.
    """
    if x.device != like.device:
        raise ValueError(
            f"{name} is on device {x.device} but {owner}'s parameters are on {like.device}; "
            "move one of them (.to(device))"
        )
    if x.dtype != like.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} has dtype {x.dtype} but {owner}'s parameters are {like.dtype}; convert "
            "one of them (.to(dtype)), or run under torch.autocast"
        )
