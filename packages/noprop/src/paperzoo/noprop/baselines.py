"""The plain network the reproduction races (spec section 6, baseline (ii)); the back-propagation
chain baseline (i) is :func:`paperzoo.noprop.dt.backprop_chain_loss`."""

from __future__ import annotations

from torch import nn

from paperzoo.core.checks import check_positive_int
from paperzoo.core.models import mlp

__all__ = ["plain_mlp"]


def plain_mlp(in_dim: int, num_classes: int, target_params: int) -> nn.Sequential:
    """An MLP ``(N, in_dim) -> (N, num_classes)`` with two ReLU hidden layers of equal width h,
    h chosen so the parameter count is about ``target_params`` (at least 8 units).

    The weights alone count d·h + h·h + h·K; h solves h² + (d + K)·h − target = 0.
    """
    d = check_positive_int("in_dim", in_dim)
    K = check_positive_int("num_classes", num_classes)
    target = check_positive_int("target_params", target_params)
    b = d + K
    h = max(8, int((-b + (b * b + 4 * target) ** 0.5) / 2))
    return mlp([d, h, h, K])
