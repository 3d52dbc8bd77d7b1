"""Focal loss (Lin, Goyal, Girshick, He & Dollár, ICCV 2017), the one baseline no paperzoo package holds.

Cross-entropy is :func:`torch.nn.functional.cross_entropy`, label smoothing is its
``label_smoothing`` argument; both are raced as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = ["FocalLoss", "focal_loss"]


def focal_loss(
    logits: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Multi-class focal loss :math:`\ell_i = -(1 - p_{i,y_i})^{\gamma} \log p_{i,y_i}`.

    ``p = softmax(logits)``; ``gamma = 0`` is cross-entropy. The log-probability comes from
    ``log_softmax`` (stable for large logits) and :math:`p_{i,y_i} = \exp(\log p_{i,y_i})`.

    Args:
        logits: ``(N, C)`` class scores.
        target: ``(N,)`` integer labels in ``[0, C)``.
        gamma: the focusing parameter :math:`\gamma \ge 0` (paper default 2).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (``(N,)``).
        validate: check label range and finiteness (host syncs).

    Returns:
        A scalar, or ``(N,)`` with ``reduction="none"``.

    Raises:
        TypeError/ValueError: non-float logits, wrong shapes, labels out of range, non-finite
            logits, a negative ``gamma`` or an unknown reduction.

    Deviation: the paper's :math:`\alpha_t` class weight is left out (its multi-class form has no
    single default; the paper's detector is binary per class); ``gamma`` is the paper's.
    """
    check_reduction(reduction)
    g = check_positive("gamma", gamma, allow_zero=True)
    check_float_tensor("logits", logits, ndim=2, nonempty=True)
    check_labels(
        "target",
        target,
        n=logits.shape[0],
        num_classes=logits.shape[1],
        like=logits,
        validate=validate,
    )
    check_finite("logits", logits, validate=validate)
    logp = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    weight = (-torch.expm1(logp)).clamp_min(0.0).pow(g) if g != 0.0 else torch.ones_like(logp)
    return reduce(-weight * logp, reduction)


class FocalLoss(nn.Module):
    """Module twin of :func:`focal_loss`: ``(N, C)`` logits, ``(N,)`` labels; ``gamma=2.0``."""

    def __init__(
        self, gamma: float = 2.0, reduction: Reduction = "mean", *, validate: bool = True
    ) -> None:
        super().__init__()
        self.gamma = check_positive("gamma", gamma, allow_zero=True)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``(N, C)``, ``(N,)`` -> the loss."""
        return focal_loss(logits, target, self.gamma, self.reduction, validate=self.validate)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
