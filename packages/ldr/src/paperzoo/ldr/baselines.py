r"""Comparison losses of the paper's experiments: generalised cross-entropy and MAE.

Both are members of the comp-sum family (GCE is ``tau = 1 + q``, MAE is twice ``tau = 2``), whose one
implementation lives in :func:`paperzoo.compsum.comp_sum_loss`; this module keeps the LDR package's
interface (one-hot targets accepted, MAE as ``2 (1 - p_y)``, ``q`` in (0, 1]) and delegates the value.
"""

from __future__ import annotations

from torch import Tensor, nn

from paperzoo.compsum import comp_sum_loss
from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_positive,
    check_reduction,
)
from paperzoo.ldr.losses import class_indices

__all__ = ["GCELoss", "MAELoss", "gce_loss", "mae_loss"]


def _comp_sum(
    logits: Tensor, target: Tensor, tau: float, reduction: Reduction, validate: bool
) -> Tensor:
    """The comp-sum loss at ``tau`` of (B, K) logits and a (B,) index or (B, K) one-hot target."""
    check_reduction(reduction)
    logits = check_float_tensor("logits", logits, ndim=2, nonempty=True)
    check_finite("logits", logits, validate=validate)
    index = class_indices(target, logits, validate=validate)
    return comp_sum_loss(logits, index, tau, reduction, validate=False)


def _check_q(q: float) -> float:
    q = check_positive("q", q)
    if q > 1:
        raise ValueError(f"q: expected a value in (0, 1], got {q}")
    return q


def gce_loss(
    logits: Tensor,
    target: Tensor,
    q: float = 0.7,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Generalised cross-entropy (Zhang & Sabuncu, 2018): :math:`(1 - p_y^q) / q`, q in (0, 1].

    logits (B, K), target (B,) indices or (B, K) one-hot. q -> 0 gives cross-entropy, q = 1 gives
    MAE / 2. Default q = 0.7 (the value the LDR paper's grid and the GCE paper use). Computed as
    :math:`(1 - \exp(q \log p_y)) / q` from ``log_softmax`` by
    :func:`paperzoo.compsum.comp_sum_loss` (``tau = 1 + q``), so it is stable for tiny :math:`p_y`.
    The official code's ``GCELoss`` adds an optional truncation ``k`` (0 in its runs); not exposed.
    Returns a scalar, or (B,) with ``reduction="none"``.
    """
    return _comp_sum(logits, target, 1.0 + _check_q(q), reduction, validate)


def mae_loss(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    r"""Mean absolute error of the softmax, :math:`\sum_k |e_{y,k} - p_k| = 2 (1 - p_y)`.

    logits (B, K), target (B,) indices or (B, K) one-hot. Returns a scalar, or (B,) with
    ``reduction="none"``.

    Deviation: the official ``MAELoss`` returns :math:`\sum_k (e_{y,k} - p_k)`, which is identically
    zero (both sum to one), so it trains nothing; we use the standard MAE of Ghosh et al. (2017).
    """
    return 2.0 * _comp_sum(logits, target, 2.0, reduction, validate)


class GCELoss(nn.Module):
    """Module form of :func:`gce_loss` (same arguments and defaults)."""

    def __init__(
        self, q: float = 0.7, reduction: Reduction = "mean", *, validate: bool = True
    ) -> None:
        super().__init__()
        self.q, self.reduction, self.validate = _check_q(q), check_reduction(reduction), validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """logits (B, K), target (B,) indices or (B, K) one-hot -> loss."""
        return gce_loss(logits, target, self.q, self.reduction, validate=self.validate)


class MAELoss(nn.Module):
    """Module form of :func:`mae_loss` (same arguments and defaults)."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        self.reduction, self.validate = check_reduction(reduction), validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """logits (B, K), target (B,) indices or (B, K) one-hot -> loss."""
        return mae_loss(logits, target, self.reduction, validate=self.validate)
