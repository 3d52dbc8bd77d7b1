"""Small model parts the reproductions share: an MLP builder and a parameter count."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from torch import nn

from paperzoo.core.checks import check_choice, check_positive_int, check_unit_interval

__all__ = ["ACTIVATIONS", "count_parameters", "mlp"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


def mlp(
    widths: Sequence[int],
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    bias: bool = True,
) -> nn.Sequential:
    """A fully connected network ``(N, widths[0]) -> (N, widths[-1])``.

    ``Linear(widths[i], widths[i + 1])`` layers with ``activation`` (and ``Dropout(dropout)`` when
    positive) between them, none after the last; PyTorch's default initialisation. ``mlp([64, 128,
    128, 10])`` is the two-hidden-layer MLP most reproductions race.

    Raises:
        TypeError/ValueError: fewer than two widths, a width below 1, an unknown activation, or a
            dropout outside [0, 1).
    """
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
        raise TypeError(f"widths: expected a sequence of integers, got {type(widths).__name__}")
    if len(widths) < 2:
        raise ValueError(f"widths: expected at least 2 entries (input and output), got {widths!r}")
    sizes = [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]
    check_choice("activation", activation, tuple(ACTIVATIONS))
    p = check_unit_interval("dropout", dropout)
    if p >= 1.0:
        raise ValueError(f"dropout: expected a value in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(fan_in, fan_out, bias=bias))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            if p > 0:
                layers.append(nn.Dropout(p))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` by default).

    Shared parameters are counted once (``nn.Module.parameters`` deduplicates them).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
