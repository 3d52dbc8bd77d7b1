"""Loss modules of the online regression oracles (twins of :mod:`paperzoo.neucb.functional`)."""

from __future__ import annotations

from torch import Tensor, nn

from paperzoo.core.checks import Reduction, check_reduction
from paperzoo.neucb.functional import kl_loss, squared_loss

__all__ = ["KLLoss", "SquaredLoss"]


class _ReducedLoss(nn.Module):
    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SquaredLoss(_ReducedLoss):
    r"""Squared loss :math:`\tfrac12 (f - y)^2` (NeuSquareCB's oracle loss).

    Shapes: ``pred (N,)`` and ``target (N,)`` (any equal shapes); output a scalar, or ``(N,)`` for
    ``reduction="none"``. Deviation: keeps the factor 1/2 (the paper may omit it; it only rescales
    the learning rate).
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return squared_loss(pred, target, self.reduction)


class KLLoss(_ReducedLoss):
    r"""Binary KL loss :math:`\mathrm{KL}(y \,\|\, \sigma(\text{logits}))` (NeuFastCB's oracle loss).

    Takes logits ``(N,)`` and targets in ``[0, 1]`` of the same shape; computed as
    BCE-with-logits minus the binary entropy of the target, so it is 0 at ``sigmoid(logit) = y``.
    """

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return kl_loss(logits, target, self.reduction)
