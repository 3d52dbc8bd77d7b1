"""The error type for user mistakes."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """A mistake in what a user asked for: an unknown name, a bad ``--set``, a bad argument.

    The CLI prints it as one line and exits with status 2, without a traceback.
    """
