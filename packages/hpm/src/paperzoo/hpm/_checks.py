"""Small argument checks shared by the modules of this package (cheap, with clear messages)."""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_float_tensor(name: str, x: object, ndim: int | None = None) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating tensor, ``ValueError`` on the wrong rank."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` when ``x`` holds NaN or inf (one host sync; skip with validate=False)."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_nonempty(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` on an empty batch (first dimension 0)."""
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")


def check_reduction(reduction: object) -> str:
    """Raise ``ValueError`` unless ``reduction`` is one of ``mean``, ``sum``, ``none``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return str(reduction)


def check_unit_interval(name: str, value: float, *, open_: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is in [0, 1] (or (0, 1) with ``open_``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    ok = 0.0 < value < 1.0 if open_ else 0.0 <= value <= 1.0
    if not ok:
        interval = "(0, 1)" if open_ else "[0, 1]"
        raise ValueError(f"{name}: expected a value in {interval}, got {value}")
    return float(value)
