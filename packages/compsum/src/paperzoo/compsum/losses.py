r"""The comp-sum loss family of Mao, Mohri & Zhong (ICML 2023), Eq. (1)-(2) of the paper.

A comp-sum loss composes :math:`\Phi^\tau` with the sum of exponentiated score differences
:math:`u = \sum_{y' \ne y} e^{h_{y'} - h_y} = 1/p_y - 1`:

.. math::  \ell_\tau(h, y) = \Phi^\tau(u), \quad
           \Phi^\tau(u) = \frac{(1+u)^{1-\tau} - 1}{1-\tau} \ (\tau \ne 1), \quad
           \Phi^1(u) = \log(1+u),

equivalently :math:`\ell_\tau = (1 - p_y^{\tau-1}) / (\tau - 1)` and :math:`\ell_1 = -\log p_y`.
``tau = 0`` is the sum-exponential loss, ``tau = 1`` cross-entropy, ``tau in (1, 2)`` generalised
cross-entropy with ``q = tau - 1``, ``tau = 2`` the MAE ``1 - p_y``. Every member is computed from
``log_softmax`` as :math:`-\mathrm{expm1}((\tau-1)\log p_y)/(\tau-1)` (one private function serves
the functional forms and the modules), and ``tau = 1`` dispatches to ``F.cross_entropy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = [
    "CompSumLoss",
    "GeneralizedCrossEntropyLoss",
    "MAELoss",
    "SumExponentialLoss",
    "check_logits_and_target",
    "check_tau",
    "comp_sum_loss",
    "comp_sum_phi",
    "generalized_cross_entropy_loss",
    "mae_loss",
    "sum_exponential_loss",
]


def check_tau(tau: object) -> float:
    """``tau`` as a float if it is a finite real ``>= 0``.

    Raises:
        TypeError: not a real number; ValueError: negative, NaN or infinite.
    """
    return check_positive("tau", tau, allow_zero=True)


def check_logits_and_target(
    logits: object, target: object, *, validate: bool = True, name: str = "logits"
) -> tuple[Tensor, Tensor]:
    """Check ``(B, n)`` floating logits with ``B >= 1``, ``n >= 2`` and ``(B,)`` labels in ``[0, n)``.

    Finiteness and the label range cost one host sync each and run only when ``validate``.

    Raises:
        TypeError: non-tensor or non-floating logits; non-integer labels.
        ValueError: wrong rank, empty batch, ``n < 2``, NaN/inf, wrong label count, labels out of
            range or on another device.
    """
    x = check_float_tensor(name, logits, ndim=2, nonempty=True)
    if x.shape[1] < 2:
        raise ValueError(f"{name}: expected n >= 2 classes (shape (B, n)), got {tuple(x.shape)}")
    check_finite(name, x, validate=validate)
    y = check_labels(
        "target", target, n=x.shape[0], num_classes=x.shape[1], like=x, validate=validate
    )
    return x, y


def comp_sum_phi(u: Tensor, tau: float = 1.0) -> Tensor:
    r"""The map :math:`\Phi^\tau(u) = ((1+u)^{1-\tau} - 1)/(1-\tau)`, :math:`\Phi^1 = \log(1+u)`.

    Computed as ``expm1((1 - tau) * log1p(u)) / (1 - tau)`` (and ``log1p(u)`` at ``tau = 1``), so it
    is continuous in ``tau`` and accurate for small ``u``.

    Args:
        u: any shape, values ``>= 0`` (for a loss, :math:`u = \sum_{y'\ne y} e^{h_{y'} - h_y}`).
        tau: :math:`\tau \ge 0`.

    Returns:
        A tensor of ``u``'s shape and dtype.

    Raises:
        TypeError: ``u`` not a floating tensor, ``tau`` not a real number.
        ValueError: ``tau < 0`` or not finite.
    """
    t = check_tau(tau)
    check_float_tensor("u", u)
    log1p = torch.log1p(u)
    if t == 1.0:
        return log1p
    return torch.expm1((1.0 - t) * log1p) / (1.0 - t)


def _check_weight(weight: Tensor | None, logits: Tensor) -> None:
    if weight is None:
        return
    check_float_tensor("weight", weight, ndim=1)
    if weight.shape[0] != logits.shape[1]:
        raise ValueError(
            f"weight: expected one weight per class, shape ({logits.shape[1]},), "
            f"got {tuple(weight.shape)}"
        )
    if weight.device != logits.device:
        raise ValueError(f"weight: expected device {logits.device}, got {weight.device}")


def _comp_sum(
    logits: Tensor, target: Tensor, tau: float, weight: Tensor | None, reduction: Reduction
) -> Tensor:
    """The one computation behind every public form (inputs already checked)."""
    if tau == 1.0:
        return F.cross_entropy(logits, target, weight=weight, reduction=reduction)
    log_p = torch.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    per = -torch.expm1((tau - 1.0) * log_p) / (tau - 1.0)
    if weight is None:
        return reduce(per, reduction)
    w = weight.to(per.dtype)[target]
    per = per * w
    if reduction == "mean":  # F.cross_entropy's convention: divide by the weights' sum
        return per.sum() / w.sum()
    return reduce(per, reduction)


def comp_sum_loss(
    logits: Tensor,
    target: Tensor,
    tau: float = 1.0,
    reduction: Reduction = "mean",
    weight: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    r"""The comp-sum loss :math:`\ell_\tau(h, y) = (1 - p_y^{\tau - 1})/(\tau - 1)` (paper Eq. 2).

    ``tau = 0`` sum-exponential, ``0.5``, ``1`` cross-entropy (computed by ``F.cross_entropy``),
    ``1 < tau < 2`` generalised cross-entropy (``q = tau - 1``), ``2`` the MAE ``1 - p_y``,
    ``tau > 2`` allowed (bounded by ``1/(tau - 1)``). The value is non-increasing in ``tau``, shift
    invariant, and for ``tau >= 1`` 1-Lipschitz in the logit differences.

    Stability: computed from ``log_softmax`` as ``-expm1((tau-1) log p_y)/(tau-1)`` in the input's
    dtype. For ``tau < 1`` the value itself grows like :math:`p_y^{-(1-\tau)}` (``tau = 0``:
    :math:`e^{\text{gap}}`), so it overflows in float32 for logit gaps above about
    ``88 / (1 - tau)``; that is the loss, not the formula (use float64 or ``tau >= 1`` there).

    The value is the true :math:`\ell_\tau`, not a "detached-weight" cross-entropy with the same
    gradient (as some GCE implementations write it).

    Args:
        logits: ``(B, n)`` scores ``h``, ``n >= 2``.
        target: ``(B,)`` integer labels in ``[0, n)``.
        tau: :math:`\tau \ge 0`; default 1 (cross-entropy).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(B,)``).
        weight: optional ``(n,)`` class weights, as in ``F.cross_entropy``: each example's loss is
            multiplied by ``weight[y]`` and ``"mean"`` divides by the sum of those weights.
        validate: check finiteness and the label range (two host syncs); turn off in hot loops.

    Returns:
        A scalar, or ``(B,)`` with ``reduction="none"``, in ``logits``' dtype.

    Raises:
        TypeError: non-floating logits, non-integer target, ``tau`` not a real number.
        ValueError: bad shapes, ``n < 2``, empty batch, NaN/inf logits, labels out of range,
            ``tau < 0``, an unknown reduction, a ``weight`` of the wrong shape.
    """
    red = check_reduction(reduction)
    t = check_tau(tau)
    x, y = check_logits_and_target(logits, target, validate=validate)
    _check_weight(weight, x)
    return _comp_sum(x, y, t, weight, red)


def sum_exponential_loss(
    logits: Tensor,
    target: Tensor,
    reduction: Reduction = "mean",
    weight: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    r"""The sum-exponential loss :math:`\sum_{y'\ne y} e^{h_{y'} - h_y} = 1/p_y - 1` (``tau = 0``).

    Shapes and errors as :func:`comp_sum_loss`.
    """
    return comp_sum_loss(logits, target, 0.0, reduction, weight, validate=validate)


def _check_q(q: object) -> float:
    v = check_positive("q", q)
    if v >= 1.0:
        raise ValueError(f"q: expected a value in (0, 1), got {q!r} (q = 1 is MAELoss)")
    return v


def generalized_cross_entropy_loss(
    logits: Tensor,
    target: Tensor,
    q: float = 0.7,
    reduction: Reduction = "mean",
    weight: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Generalised cross-entropy :math:`(1 - p_y^q)/q` (Zhang & Sabuncu, 2018) = ``tau = 1 + q``.

    ``q in (0, 1)``; default ``0.7`` (the GCE paper's value). Shapes and errors as
    :func:`comp_sum_loss`; ``q`` outside ``(0, 1)`` raises ``ValueError``.
    """
    return comp_sum_loss(logits, target, 1.0 + _check_q(q), reduction, weight, validate=validate)


def mae_loss(
    logits: Tensor,
    target: Tensor,
    reduction: Reduction = "mean",
    scale: int = 1,
    weight: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    r"""The MAE comp-sum member ``tau = 2``: ``scale * (1 - p_y)``.

    ``scale=1`` (default) is the paper's :math:`\ell_2 = 1 - p_y`; ``scale=2`` is
    :math:`\lVert e_y - \mathrm{softmax}(h)\rVert_1 = 2(1 - p_y)`, the convention of Ghosh et al.
    (2017) and of most noisy-label code. Shapes and errors as :func:`comp_sum_loss`.

    Raises:
        ValueError: ``scale`` not 1 or 2 (and the errors of :func:`comp_sum_loss`).
    """
    s = check_choice("scale", scale, (1, 2))
    out = comp_sum_loss(logits, target, 2.0, reduction, weight, validate=validate)
    return out * s if s != 1 else out


class CompSumLoss(nn.Module):
    """Module twin of :func:`comp_sum_loss` (same arguments and defaults).

    ``forward(logits (B, n), target (B,)) -> scalar`` (``(B,)`` with ``reduction="none"``).
    ``weight`` is kept as a buffer, so it follows ``.to(device)``.
    """

    weight: Tensor | None

    def __init__(
        self,
        tau: float = 1.0,
        reduction: Reduction = "mean",
        weight: Tensor | None = None,
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.tau = check_tau(tau)
        self.reduction: Reduction = check_reduction(reduction)
        if weight is not None:
            check_float_tensor("weight", weight, ndim=1)
        self.register_buffer("weight", weight)
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` ``(B, n)``, ``target`` ``(B,)`` → the loss."""
        return comp_sum_loss(
            logits, target, self.tau, self.reduction, self.weight, validate=self.validate
        )

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"


class SumExponentialLoss(CompSumLoss):
    """:class:`CompSumLoss` at ``tau = 0``: :math:`\\sum_{y'\\ne y} e^{h_{y'} - h_y}`."""

    def __init__(
        self, reduction: Reduction = "mean", weight: Tensor | None = None, *, validate: bool = True
    ) -> None:
        super().__init__(0.0, reduction, weight, validate=validate)


class GeneralizedCrossEntropyLoss(CompSumLoss):
    """:class:`CompSumLoss` at ``tau = 1 + q``: :math:`(1 - p_y^q)/q`, ``q in (0, 1)``, default 0.7."""

    def __init__(
        self,
        q: float = 0.7,
        reduction: Reduction = "mean",
        weight: Tensor | None = None,
        *,
        validate: bool = True,
    ) -> None:
        q = _check_q(q)
        super().__init__(1.0 + q, reduction, weight, validate=validate)
        self.q = q

    def extra_repr(self) -> str:
        return f"q={self.q}, reduction={self.reduction!r}"


class MAELoss(CompSumLoss):
    """:class:`CompSumLoss` at ``tau = 2``: ``scale * (1 - p_y)``; ``scale`` 1 (paper) or 2 (L1)."""

    def __init__(
        self,
        reduction: Reduction = "mean",
        scale: int = 1,
        weight: Tensor | None = None,
        *,
        validate: bool = True,
    ) -> None:
        scale = check_choice("scale", scale, (1, 2))
        super().__init__(2.0, reduction, weight, validate=validate)
        self.scale = scale

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` ``(B, n)``, ``target`` ``(B,)`` → ``scale * (1 - p_y)`` reduced."""
        out = super().forward(logits, target)
        return out * self.scale if self.scale != 1 else out

    def extra_repr(self) -> str:
        return f"scale={self.scale}, reduction={self.reduction!r}"
