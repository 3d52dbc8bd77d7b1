"""The error type for user mistakes, and a check shared by the packages' argument validation."""

from __future__ import annotations

__all__ = ["UserError", "as_real"]


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
