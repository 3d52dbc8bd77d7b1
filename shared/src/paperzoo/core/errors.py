"""The error type for user mistakes, and a check shared by the packages' argument validation."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["UserError", "as_real", "check_like"]


class UserError(ValueError):
    """A mistake in what a user asked for: an unknown name, a bad ``--set``, a bad argument.

    The CLI prints it as one line and exits with status 2, without a traceback.
    """


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
    raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


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
