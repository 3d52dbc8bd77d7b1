r"""The fixed margin losses EnsLoss is raced against: hinge and exponential (BCE is torch's).

Both take one logit per example and binary targets like :func:`paperzoo.ensloss.ensloss`
(``{0, 1}`` by default, as the reference's ``Hinge`` and ``EXP``), with margin
:math:`z = y f(x)`. The logistic loss (BCE) is ``torch.nn.BCEWithLogitsLoss``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction, check_reduction, reduce
from paperzoo.ensloss.margins import TargetFormat, binary_margins, check_target_format

__all__ = ["ExponentialLoss", "HingeLoss", "exponential_loss", "hinge_loss"]


def _margin_loss(
    kind: str,
    logits: Tensor,
    target: Tensor,
    target_format: TargetFormat,
    reduction: Reduction,
    validate: bool,
) -> Tensor:
    """The one computation behind the functions and modules below."""
    check_reduction(reduction)
    _, z = binary_margins(logits, target, check_target_format(target_format), validate=validate)
    per = torch.relu(1.0 - z) if kind == "hinge" else torch.exp(-z)
    return reduce(per, reduction)


def hinge_loss(
    logits: Tensor,
    target: Tensor,
    target_format: TargetFormat = "01",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Hinge loss :math:`\phi(z) = \max(1 - z, 0)` of the margins :math:`z = y f(x)`.

    Args:
        logits: ``(B,)`` or ``(B, 1)`` float scores (binary only).
        target: ``(B,)`` or ``(B, 1)`` targets in ``{0, 1}`` (``"01"``) or ``{-1, +1}`` (``"pm1"``).
        target_format: ``"01"`` (reference) or ``"pm1"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B,)``).
        validate: check finiteness and target values (host syncs).

    Returns:
        A scalar (``(B,)`` for ``"none"``) in ``logits``' dtype.

    Raises:
        TypeError/ValueError: as :func:`paperzoo.ensloss.binary_margins`; an unknown reduction.
    """
    return _margin_loss("hinge", logits, target, target_format, reduction, validate)


def exponential_loss(
    logits: Tensor,
    target: Tensor,
    target_format: TargetFormat = "01",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Exponential loss :math:`\phi(z) = e^{-z}` of the margins :math:`z = y f(x)`.

    The reference clips the gradient norm at 10 when training with it (its ``train.py``); that is
    the training loop's job (``fit(grad_clip=10.0)``), not the loss's.

    Args, Returns, Raises: as :func:`hinge_loss`.
    """
    return _margin_loss("exp", logits, target, target_format, reduction, validate)


class _MarginLoss(nn.Module):
    """The shared module state of the fixed margin losses (``kind`` set by each subclass)."""

    kind = ""

    def __init__(
        self,
        target_format: TargetFormat = "01",
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.target_format: TargetFormat = check_target_format(target_format)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of ``(B,)``/``(B, 1)`` logits and targets: a scalar, ``(B,)`` for ``"none"``."""
        return _margin_loss(
            self.kind, logits, target, self.target_format, self.reduction, self.validate
        )


class HingeLoss(_MarginLoss):
    """:func:`hinge_loss` as a module (``target_format``, ``reduction``, ``validate`` as there).

    Shapes: ``(B,)``/``(B, 1)`` logits and targets -> a scalar (``(B,)`` for ``"none"``).
    """

    kind = "hinge"


class ExponentialLoss(_MarginLoss):
    """:func:`exponential_loss` as a module (``target_format``, ``reduction``, ``validate`` as
    there). Shapes: ``(B,)``/``(B, 1)`` logits and targets -> a scalar (``(B,)`` for ``"none"``).
    """

    kind = "exp"
