"""Argument and input checks shared by the layers and models of this package."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence

import torch
from torch import Tensor

from paperzoo.core.checks import check_like


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum`` (Python or NumPy integer,
    not a bool), else raise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_range(name: str, value: object) -> tuple[float, float]:
    """Return ``(low, high)`` as floats if ``value`` is a pair of finite numbers with
    ``high > low``, else raise a ``ValueError`` naming it."""
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (low, high) with high > low, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"{name} must be (low, high) finite with high > low, got {value!r}")
    return lo, hi


def check_choice(name: str, value: object, choices: Collection[str | None]) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices or (value is not None and not isinstance(value, str)):
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {shown}, got {value!r}")


def check_layers(layers: Sequence[int]) -> list[int]:
    """Validate a width list such as ``[784, 64, 10]`` (at least 2 positive integers)."""
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of integers, got {type(layers).__name__}")
    widths = list(layers)
    if len(widths) < 2:
        raise ValueError(f"layers must have at least 2 entries (input and output), got {widths}")
    for i, w in enumerate(widths):
        check_positive_int(f"layers[{i}]", w)
    return widths


def check_input(
    x: object,
    in_features: int,
    layer: str,
    *,
    finite: bool = True,
    like: Tensor | None = None,
) -> Tensor:
    """Check a layer input of shape ``(*, in_features)`` and return it.

    Raises ``TypeError`` for a non-tensor or a non-floating tensor and ``ValueError`` for fewer
    than 2 dims, a wrong last dim, an empty batch, or (when ``finite``) NaN/Inf values. The
    finiteness check costs one host-device sync; layers expose ``validate=False`` to skip it.
    With ``like`` (a parameter of the layer), ``x`` must be on its device (``ValueError``) and
    have its dtype (``TypeError``) unless autocast is enabled for that device type.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: input x must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{layer}: input x must be a floating-point tensor, got dtype {x.dtype}")
    if like is not None:
        check_like(f"{layer}: input x", x, like, owner="the layer")
    if x.dim() < 2:
        raise ValueError(
            f"{layer}: input x must have shape (batch, ..., {in_features}) with at least 2 dims, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[-1] != in_features:
        raise ValueError(
            f"{layer}: input x must have last dim in_features={in_features}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{layer}: input x is an empty batch (shape {tuple(x.shape)})")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{layer}: input x contains NaN or Inf values")
    return x
