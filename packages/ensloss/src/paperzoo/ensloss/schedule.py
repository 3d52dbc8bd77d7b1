"""The optional lambda schedule of the reference (``ensLoss_per_epochs``; off by default there)."""

from __future__ import annotations

import torch

from paperzoo.core.checks import as_real, check_positive_int
from paperzoo.ensloss.loss import EnsLoss

__all__ = ["LambdaResampler"]


class LambdaResampler:
    r"""Every ``period`` epochs, draw the Box-Cox :math:`\lambda` of an :class:`EnsLoss` from
    :math:`U(\text{low}, \text{high})` (reference: ``U(-1, 1)``, ``train.py``).

    Call :meth:`step` with the 1-based epoch number at the start of each epoch, as the reference
    does (``if e % period == 0: lam = 2 * rand() - 1``); other epochs keep the current ``lam``.

    Args:
        loss: the :class:`EnsLoss` whose ``lam`` is set.
        period: ``P >= 1`` epochs between draws.
        low, high: the uniform's bounds (finite, ``low <= high``; equal bounds fix ``lam``).
        generator: a CPU ``torch.Generator`` for the draws; ``None`` uses the global one.

    Raises:
        TypeError: ``loss`` not an :class:`EnsLoss`; ValueError: ``period <= 0``, ``low > high``
            or a non-finite bound.

    Deviation: the reference draws with NumPy's global RNG; here a torch generator.
    """

    def __init__(
        self,
        loss: EnsLoss,
        period: int,
        low: float = -1.0,
        high: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(loss, EnsLoss):
            raise TypeError(f"loss: expected an EnsLoss, got {type(loss).__name__}")
        self.loss = loss
        self.period = check_positive_int("period", period)
        lo, hi = as_real("low", low), as_real("high", high)
        if not (abs(lo) < float("inf") and abs(hi) < float("inf")) or lo > hi:
            raise ValueError(
                f"low, high: expected finite bounds with low <= high, got ({low!r}, {high!r})"
            )
        self.low, self.high = lo, hi
        self.generator = generator

    def step(self, epoch: int) -> float:
        """Resample ``loss.lam`` if ``epoch`` (1-based) is a multiple of ``period``; return ``lam``."""
        epoch = check_positive_int("epoch", epoch)
        if epoch % self.period == 0:
            u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
            self.loss.lam = self.low + (self.high - self.low) * u
        return self.loss.lam
