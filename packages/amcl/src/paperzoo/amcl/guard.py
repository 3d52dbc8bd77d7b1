"""A collapse guard: the mean pairwise cosine of projections, and a warning when it nears 1."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_positive_int, check_unit_interval

__all__ = ["CollapseGuard", "CollapseWarning", "mean_pairwise_cosine"]


class CollapseWarning(UserWarning):
    """Projections of different examples have become (nearly) identical."""


def mean_pairwise_cosine(z: Tensor) -> Tensor:
    """Mean cosine similarity over the distinct pairs of rows, per leading index.

    Args:
        z: ``(..., B, d)``, ``B >= 2``.

    Returns:
        ``(...)``: 1 for fully collapsed projections, about 0 for spread-out ones.

    Raises:
        TypeError/ValueError: not a float tensor of rank >= 2, or ``B < 2``.
    """
    check_float_tensor("z", z)
    if z.dim() < 2 or z.shape[-2] < 2:
        raise ValueError(f"z: expected (..., B, d) with B >= 2, got shape {tuple(z.shape)}")
    u = F.normalize(z, dim=-1)
    b = u.shape[-2]
    total = u.sum(-2).square().sum(-1)  # sum over all ordered pairs incl. i == j
    diag = u.square().sum((-2, -1))
    return (total - diag) / (b * (b - 1))


class CollapseGuard:
    """Warns (:class:`CollapseWarning`) when projections collapse.

    Call it on a batch of projections ``(C, B, d)`` (or ``(B, d)``) every ``every`` steps; it records
    the per-head mean pairwise cosine (``history``) and warns once the largest exceeds
    ``threshold`` (default 0.9; a healthy SimCLR run sits near 0-0.3, the collapsed AMCL max mode
    at 0.96-1.0). Each check is one host sync.

    Freshly initialised networks often give aligned projections (mean cosine ~0.99 for an MLP on
    the digits), so checks start after ``start`` calls.

    Args:
        threshold: cosine above which to warn, in ``[0, 1]``.
        every: check every ``every``-th call (default 1).
        start: calls to skip before the first check (default 100).
    """

    def __init__(self, threshold: float = 0.9, every: int = 1, start: int = 100) -> None:
        self.threshold = check_unit_interval("threshold", threshold)
        self.every = check_positive_int("every", every)
        self.start = check_positive_int("start", start, minimum=0)
        self.calls = 0
        self.history: list[float] = []
        self.fired = False

    @torch.no_grad()
    def __call__(self, z: Tensor) -> bool:
        """Check ``z``; returns True when this call fired the warning."""
        self.calls += 1
        if self.calls <= self.start or (self.calls - 1 - self.start) % self.every:
            return False
        cos = float(mean_pairwise_cosine(z.detach()).max())
        self.history.append(cos)
        if cos > self.threshold:
            self.fired = True
            warnings.warn(
                f"projections collapsed: mean pairwise cosine {cos:.3f} > {self.threshold} "
                "(try negatives='logsumexp', a smaller beta, or a narrower temperature range)",
                CollapseWarning,
                stacklevel=2,
            )
            return True
        return False
