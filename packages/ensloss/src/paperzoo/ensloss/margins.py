"""Binary margins ``z = y f(x)`` from one logit per example and a binary target.

Every loss of this package is a margin loss: it sees the score ``f(x)`` (one logit) and the label
``y in {-1, +1}`` only through ``z = y f(x)``. The reference code takes 0/1 targets and maps them
with ``y = 2t - 1``; ``target_format="pm1"`` takes ``{-1, +1}`` targets as they are.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from paperzoo.core.checks import check_choice, check_finite, check_float_tensor

__all__ = ["TargetFormat", "binary_margins", "check_target_format"]

TargetFormat = Literal["01", "pm1"]
"""How binary targets are written: ``"01"`` (``{0, 1}``, the reference's) or ``"pm1"`` (``{-1, +1}``)."""

_FORMATS: tuple[TargetFormat, ...] = ("01", "pm1")


def check_target_format(target_format: object) -> TargetFormat:
    """``target_format`` if it is ``"01"`` or ``"pm1"``.

    Raises:
        ValueError: ``target_format: expected one of ['01', 'pm1'], got ...``.
    """
    for fmt in _FORMATS:
        if isinstance(target_format, str) and target_format == fmt:
            return fmt
    check_choice("target_format", target_format, tuple[object, ...](_FORMATS))
    raise AssertionError("unreachable")  # pragma: no cover


def _as_column(name: str, t: Tensor, what: str) -> Tensor:
    """``t`` of shape ``(B,)`` or ``(B, 1)`` as ``(B,)``; anything else is a clear error."""
    if t.dim() == 2 and t.shape[1] == 1:
        return t[:, 0]
    if t.dim() == 1:
        return t
    if name == "logits" and t.dim() == 2:
        raise ValueError(
            f"logits: expected one logit per example, shape (B,) or (B, 1), got shape "
            f"{tuple(t.shape)}; EnsLoss and its margin-loss baselines are binary-only (the paper "
            "defines no multi-class version): train one-vs-rest heads for several classes"
        )
    raise ValueError(f"{name}: expected {what} of shape (B,) or (B, 1), got shape {tuple(t.shape)}")


def binary_margins(
    logits: Tensor,
    target: Tensor,
    target_format: TargetFormat = "01",
    *,
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    """The signed labels ``y`` and the margins ``z = y * logits``, both ``(B,)``.

    Args:
        logits: ``(B,)`` or ``(B, 1)`` float scores ``f(x)``.
        target: ``(B,)`` or ``(B, 1)`` binary targets (integer, bool or float dtype) in
            ``{0, 1}`` (``target_format="01"``) or ``{-1, +1}`` (``"pm1"``).
        target_format: ``"01"`` maps ``t`` to ``y = 2t - 1``; ``"pm1"`` uses ``t`` as ``y``.
        validate: check finiteness of ``logits`` and the target's values (one host sync each).

    Returns:
        ``(y, z)``: ``y`` in ``logits``' dtype, ``z = y * logits`` (differentiable in ``logits``).

    Raises:
        TypeError: ``logits`` not a float tensor; ``target`` not a tensor or complex.
        ValueError: several logit columns (binary-only), a target of another length, shape or
            device, an empty batch, NaN/inf logits, or target values outside the format.
    """
    fmt = check_target_format(target_format)
    check_float_tensor("logits", logits, nonempty=logits.dim() > 0)
    if logits.dim() == 0:
        raise ValueError("logits: expected shape (B,) or (B, 1), got a 0-D tensor")
    f = _as_column("logits", logits, "one logit per example")
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.is_complex():
        raise TypeError(f"target: expected real binary targets, got dtype {target.dtype}")
    t = _as_column("target", target, "one binary target per example")
    if t.shape[0] != f.shape[0]:
        raise ValueError(
            f"target: expected {f.shape[0]} targets (one per logit), got {t.shape[0]} "
            f"(logits {tuple(logits.shape)}, target {tuple(target.shape)})"
        )
    if t.device != f.device:
        raise ValueError(f"target: expected device {f.device} (like logits), got {t.device}")
    check_finite("logits", f, validate=validate)
    t = t.to(f.dtype)
    if validate:
        allowed = (0.0, 1.0) if fmt == "01" else (-1.0, 1.0)
        bad = ~((t == allowed[0]) | (t == allowed[1]))
        if bool(bad.any()):
            first = t[bad][0].item()
            raise ValueError(
                f"target: expected values in {{{allowed[0]:g}, {allowed[1]:g}}} "
                f"(target_format={fmt!r}), got {first!r}"
            )
    y = 2.0 * t - 1.0 if fmt == "01" else t
    return y, y * f
