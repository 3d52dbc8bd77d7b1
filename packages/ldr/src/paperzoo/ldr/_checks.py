"""Input checks shared by the losses (cheap; public functions take ``validate=False`` to skip)."""

from __future__ import annotations

from typing import Final

import torch
from torch import Tensor

__all__ = [
    "NORMALIZATIONS",
    "REDUCTIONS",
    "check_choice",
    "check_logits",
    "check_positive",
    "to_index_target",
]

NORMALIZATIONS: Final = ("softplus_mean", "l1", "softplus_l1", "none")
REDUCTIONS: Final = ("mean", "sum", "none")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    bad = value < 0 if allow_zero else value <= 0
    if bad or value != value or value == float("inf"):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {rel}, got {value}")


def check_logits(logits: object, *, validate: bool = True, name: str = "logits") -> Tensor:
    """Check that ``logits`` is a floating (B, K) tensor with B >= 1, K >= 2 and finite values.

    ``name`` is the argument named in the error messages.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {logits.dtype}")
    if logits.dim() != 2:
        raise ValueError(
            f"{name} must have shape (B, K), got {tuple(logits.shape)} ({logits.dim()} dims)"
        )
    if logits.shape[1] < 2:
        raise ValueError(f"{name} must have K >= 2 classes, got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0); the loss of no examples is undefined")
    if validate and not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return logits


def to_index_target(target: object, logits: Tensor, *, validate: bool = True) -> Tensor:
    """Return class indices (B,) long from class indices (B,) or a one-hot (B, K) target."""
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    batch, num_classes = logits.shape
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits is on {logits.device}")
    if target.dim() == 1:
        if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
            raise TypeError(f"class-index target must have an integer dtype, got {target.dtype}")
        if target.shape[0] != batch:
            raise ValueError(
                f"target has shape {tuple(target.shape)} but logits has batch size {batch}; "
                f"expected ({batch},) class indices or ({batch}, {num_classes}) one-hot"
            )
        if validate and bool(((target < 0) | (target >= num_classes)).any()):
            lo, hi = int(target.min()), int(target.max())
            raise ValueError(
                f"target class indices must lie in [0, {num_classes}), got range [{lo}, {hi}]"
            )
        return target.long()
    if target.dim() == 2:
        if tuple(target.shape) != (batch, num_classes):
            raise ValueError(
                f"one-hot target must have shape {(batch, num_classes)} like logits, "
                f"got {tuple(target.shape)}"
            )
        if validate:
            t = target.to(torch.float64)
            is_binary = bool(((t == 0) | (t == 1)).all())
            if not is_binary or not bool((t.sum(dim=1) == 1).all()):
                raise ValueError(
                    "one-hot target must contain only 0/1 with exactly one 1 per row "
                    "(soft labels are not supported)"
                )
        if target.dtype == torch.bool:  # argmax has no bool kernel
            target = target.to(torch.uint8)
        return target.argmax(dim=1)
    raise ValueError(
        f"target must be (B,) class indices or (B, K) one-hot, got shape {tuple(target.shape)}"
    )
