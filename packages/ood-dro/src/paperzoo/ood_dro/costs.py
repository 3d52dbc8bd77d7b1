"""Transport costs ``c(z, x)`` of the Wasserstein ball: one value per example.

Every cost takes two tensors of the same shape ``(B, ...)`` (an example is a row, of any trailing
shape) and returns ``(B,)``. ``COSTS`` is the registry :class:`~paperzoo.ood_dro.WassersteinRobustLoss`
reads its ``cost`` name from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["COSTS", "l2", "squared_l2"]


def squared_l2(z: Tensor, x: Tensor) -> Tensor:
    """``c(z, x) = ||z - x||_2^2`` per row (the paper's and the reference code's cost).

    Args:
        z: ``(B, ...)`` moved points.
        x: ``(B, ...)`` original points, same shape.

    Returns:
        ``(B,)``, zero where ``z == x``.
    """
    return (z - x).flatten(1).pow(2).sum(1)


def l2(z: Tensor, x: Tensor) -> Tensor:
    """``c(z, x) = ||z - x||_2`` per row, ``(B, ...) x (B, ...) -> (B,)``.

    Its gradient at ``z = x`` is taken as 0 (PyTorch's subgradient of the norm at the origin), so
    an ascent started at ``x`` moves by the loss gradient alone on its first step.
    """
    out: Tensor = torch.linalg.vector_norm((z - x).flatten(1), dim=1)
    return out


COSTS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"sq_l2": squared_l2, "l2": l2}
"""Cost name -> ``cost(z, x) -> (B,)``: ``"sq_l2"`` (default) and ``"l2"``."""
