"""The spherical loss family: the Z-loss and the other members used as baselines.

One concept (about 510 lines): every member is a function of the same sufficient statistics of the
outputs and shares their computation and input checks with the factored head.

A loss is *spherical* (Vincent et al., 2015) when it depends on the ``D`` output pre-activations
``o = W h`` only through the target output(s) ``o_c``, their sum ``s = Σ_k o_k`` and their squared
norm ``q = Σ_k o_k²``. Every loss here therefore has two doors over one private formula:

* the dense form ``z_loss(logits, target)`` takes the full ``(B, D)`` logits;
* the ``*_from_stats(target_logits, sq_sum, sum, num_classes)`` form takes only the three
  statistics, which :class:`paperzoo.zloss.FactoredSphericalLinear` produces in ``O(d²)`` per example
  without ever forming ``o``.

NAMING: the Z-loss of de Brébisson & Vincent (2016) is a *z-normalised softplus* classification loss.
It is **not** the ``λ·logsumexp(logits)²`` "z-loss" auxiliary regulariser of PaLM / ST-MoE (found in
Megatron-LM, TransformerEngine, Liger-Kernel, gpt-neox). This package does not implement that one.

With several targets per example (``target`` of shape ``(B, K)``) the per-example loss is the sum of
the single-target losses over the ``K`` targets (duplicates count twice), except the squared error,
which is ``||o - y||²`` for the K-hot target ``y`` (``q - 2 Σ_k o_{c_k} + K``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    as_real,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "DENSE_SPHERICAL_LOSSES",
    "SPHERICAL_LOSSES",
    "LogSphericalSoftmaxLoss",
    "LogTaylorSoftmaxLoss",
    "SphericalLossFn",
    "SphericalMSELoss",
    "ZLoss",
    "log_spherical_softmax_loss",
    "log_spherical_softmax_loss_from_stats",
    "log_taylor_softmax_loss",
    "log_taylor_softmax_loss_from_stats",
    "spherical_mse_loss",
    "spherical_mse_loss_from_stats",
    "spherical_stats",
    "spherical_targets",
    "z_loss",
    "z_loss_from_stats",
]


class SphericalLossFn(Protocol):
    """A spherical loss given by its statistics.

    Called as ``fn(target_logits, sq_sum, sum, num_classes, reduction=...)`` with
    ``target_logits`` of shape ``(B, K)``, ``sq_sum`` and ``sum`` of shape ``(B,)``; returns a scalar
    (``"mean"``/``"sum"``) or ``(B,)`` (``"none"``).
    """

    def __call__(
        self,
        target_logits: Tensor,
        sq_sum: Tensor,
        sum: Tensor,
        num_classes: int,
        *,
        reduction: Reduction = "mean",
    ) -> Tensor: ...


# --------------------------------------------------------------------------- validation


def spherical_targets(
    target: object, batch: int, num_classes: int, *, validate: bool = True
) -> Tensor:
    """The targets of a spherical loss, ``(B,)`` or ``(B, K)`` integer classes, as ``(B, K)`` int64.

    Every loss here and :class:`~paperzoo.zloss.FactoredSphericalLinear` take ``K >= 1`` targets per
    example; this is :func:`paperzoo.core.checks.check_labels` extended to that ``(B, K)`` shape.

    Args:
        target: ``(B,)`` or ``(B, K)`` integer class indices.
        batch: ``B``, the number of rows the targets belong to.
        num_classes: ``D``; every target must lie in ``[0, D)``.
        validate: check the range (one host sync); the shape and dtype are always checked.

    Returns:
        ``(B, K)`` int64 (``(B, 1)`` for ``(B,)`` targets).

    Raises:
        TypeError: not a tensor, or not an integer dtype.
        ValueError: another shape, ``K = 0``, or (with ``validate``) a class outside ``[0, D)``.
    """
    if isinstance(target, Tensor) and target.dim() == 2:
        if target.shape[0] != batch or target.shape[1] == 0:
            raise ValueError(
                f"target: expected shape ({batch},) or ({batch}, K) with K >= 1, "
                f"got {tuple(target.shape)}"
            )
        check_labels("target", target.reshape(-1), num_classes=num_classes, validate=validate)
        return target.long()
    if isinstance(target, Tensor) and target.dim() != 1:
        raise ValueError(
            f"target: expected shape ({batch},) or ({batch}, K) with K >= 1, "
            f"got {tuple(target.shape)}"
        )
    y = check_labels("target", target, n=batch, num_classes=num_classes, validate=validate)
    return y.long().unsqueeze(1)


def _check_num_classes(num_classes: int) -> None:
    check_positive_int("num_classes", num_classes, minimum=2)


def _check_logits(logits: Tensor, validate: bool) -> None:
    check_float_tensor("logits", logits, ndim=2, nonempty=True)
    _check_num_classes(logits.shape[1])
    check_finite("logits", logits, validate=validate)


def _check_stats(
    target_logits: Tensor, sq_sum: Tensor, sum_: Tensor, num_classes: int, validate: bool
) -> Tensor:
    """Validate the statistics; returns target_logits as (B, K)."""
    check_float_tensor("target_logits", target_logits)
    check_float_tensor("sq_sum", sq_sum)
    check_float_tensor("sum", sum_)
    _check_num_classes(num_classes)
    if target_logits.dim() == 1:
        target_logits = target_logits.unsqueeze(1)
    if target_logits.dim() != 2:
        raise ValueError(
            f"target_logits: expected shape (B,) or (B, K), got {tuple(target_logits.shape)}"
        )
    check_nonempty("target_logits", target_logits)
    batch = target_logits.shape[0]
    for name, t in (("sq_sum", sq_sum), ("sum", sum_)):
        if t.shape != (batch,):
            raise ValueError(f"{name}: expected shape ({batch},), got {tuple(t.shape)}")
    for name, t in (("target_logits", target_logits), ("sq_sum", sq_sum), ("sum", sum_)):
        check_finite(name, t, validate=validate)
    return target_logits


# --------------------------------------------------------------------------- statistics


def spherical_stats(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The spherical statistics of dense logits.

    Args:
        logits: ``(B, D)`` output pre-activations ``o``.
        target: ``(B,)`` or ``(B, K)`` integer class indices.

    Returns:
        ``(target_logits (B, K), sq_sum (B,), sum (B,))`` = ``(o_c, q = Σ o_k², s = Σ o_k)``.
    """
    _check_logits(logits, validate=False)
    tgt = spherical_targets(target, logits.shape[0], logits.shape[1])
    return logits.gather(1, tgt), logits.square().sum(1), logits.sum(1)


def _variance_from_stats(sq_sum: Tensor, sum_: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Population mean and variance over the D outputs from (q, s), clamped at 0.

    ``q/D - μ²`` cancels catastrophically when ``|μ| >> σ``; the subtraction is done in float64
    (except on MPS, which has none). It touches only B numbers.
    """
    wide = torch.float32 if sum_.device.type == "mps" else torch.float64
    mean = sum_.to(wide) / num_classes
    var = (sq_sum.to(wide) / num_classes - mean.square()).clamp_min(0.0)
    return mean.to(sum_.dtype), var.to(sum_.dtype)


# --------------------------------------------------------------------------- Z-loss


def _check_z_params(a: float, b: float, eps: float) -> None:
    """``a`` (softness) > 0, ``b`` (target z-score) finite, ``eps`` >= 0, all real numbers."""
    check_positive("a", a)
    if not math.isfinite(as_real("b", b)):
        raise ValueError(f"b: expected a finite value, got {b!r}")
    check_positive("eps", eps, allow_zero=True)


def _z_loss_core(
    target_logits: Tensor, mean: Tensor, var: Tensor, a: float, b: float, eps: float
) -> Tensor:
    """Per-example Z-loss from (o_c (B, K), μ (B,), σ² (B,)); sums over the K targets."""
    sigma = torch.sqrt(var + eps)
    z = (target_logits - mean.unsqueeze(1)) / sigma.unsqueeze(1)
    return (F.softplus(a * (b - z)) / a).sum(1)


def z_loss(
    logits: Tensor,
    target: Tensor,
    a: float = 1.0,
    b: float = 0.0,
    eps: float = 1e-12,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""The Z-loss (de Brébisson & Vincent, 2016), from dense logits.

    .. math::
        z_c = \frac{o_c - \mu}{\sigma},\quad \mu = \tfrac1D\sum_k o_k,\quad
        \sigma^2 = \tfrac1D\sum_k (o_k-\mu)^2,\qquad
        L = \tfrac1a \operatorname{softplus}\big(a\,(b - z_c)\big).

    Shift- and scale-invariant in ``o``; bounded below by ``(1/a)·softplus(a(b - √(D-1)))``.
    Not the PaLM/ST-MoE ``logsumexp²`` "z-loss" regulariser.

    Args:
        logits: ``(B, D)`` floating outputs ``o``, ``D >= 2``.
        target: ``(B,)`` or ``(B, K)`` integer classes in ``[0, D)`` (K targets are summed).
        a: softness ``a > 0`` (``a → ∞``: hinge ``max(0, b - z_c)``). Default 1.0, the official
            example's value; the paper tunes (a, b) per task and metric by grid search - tune it.
        b: the target z-score ``b``. Default 0.0 (official example); tune it.
        eps: added to ``σ²`` under the square root: ``σ = √(σ² + eps)``. Default 1e-12.
        reduction: ``"mean"`` (default) | ``"sum"`` | ``"none"`` over the batch.
        validate: check target range and finiteness (one host sync each); False in hot loops.

    Returns:
        A scalar, or ``(B,)`` with ``reduction="none"``.

    Raises:
        ValueError: logits not 2-D, ``D < 2``, an empty batch (for every reduction, also ``"sum"``),
            NaN/Inf logits, targets out of ``[0, D)`` or of the wrong shape, ``a <= 0``.
        TypeError: non-floating logits or non-integer targets.

    Deviation: the official example computes ``softplus((μ - o_c)/(σ + eps))`` with
    ``σ = √(q/D - μ²)``; we use ``√(max(σ², 0) + eps)`` and a two-pass variance, so that an all-equal
    output row (σ = 0) or a rounding-negative ``σ²`` gives a finite loss and finite gradients instead
    of NaN. The reference sums over the batch; our default is the mean (``reduction="sum"`` matches).
    """
    check_reduction(reduction)
    _check_z_params(a, b, eps)
    _check_logits(logits, validate)
    tgt = spherical_targets(target, logits.shape[0], logits.shape[1], validate=validate)
    var, mean = torch.var_mean(logits, dim=1, correction=0)
    return reduce(_z_loss_core(logits.gather(1, tgt), mean, var, a, b, eps), reduction)


def z_loss_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    a: float = 1.0,
    b: float = 0.0,
    eps: float = 1e-12,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """The Z-loss from the spherical statistics (see :func:`z_loss` for the maths and defaults).

    Args:
        target_logits: ``(B,)`` or ``(B, K)`` target outputs ``o_c``.
        sq_sum: ``(B,)`` ``q = Σ_k o_k²``.
        sum: ``(B,)`` ``s = Σ_k o_k``.
        num_classes: ``D`` (>= 2), the number of outputs the statistics were taken over.

    ``σ² = q/D - μ²`` is formed in float64 and clamped at 0 (the reference does neither).
    """
    check_reduction(reduction)
    _check_z_params(a, b, eps)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    mean, var = _variance_from_stats(sq_sum, sum, num_classes)
    return reduce(_z_loss_core(tl, mean, var, a, b, eps), reduction)


# --------------------------------------------------------------------------- other members


def _mse_core(target_logits: Tensor, sq_sum: Tensor) -> Tensor:
    k = target_logits.shape[1]
    return sq_sum - 2.0 * target_logits.sum(1) + float(k)


def spherical_mse_loss(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    """Squared error to the one-hot (K-hot) target, ``||o - y||² = q - 2 o_c + 1``.

    Args: ``logits (B, D)``, ``target (B,)`` or ``(B, K)``. Returns a scalar or ``(B,)``.
    The loss of Vincent et al. (2015); no hyper-parameter.
    """
    check_reduction(reduction)
    _check_logits(logits, validate)
    tgt = spherical_targets(target, logits.shape[0], logits.shape[1], validate=validate)
    return reduce(_mse_core(logits.gather(1, tgt), logits.square().sum(1)), reduction)


def spherical_mse_loss_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`spherical_mse_loss` from the statistics ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    check_reduction(reduction)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return reduce(_mse_core(tl, sq_sum), reduction)


def _taylor_core(target_logits: Tensor, sq_sum: Tensor, sum_: Tensor, num_classes: int) -> Tensor:
    numerator = 1.0 + target_logits + 0.5 * target_logits.square()
    denominator = num_classes + sum_ + 0.5 * sq_sum
    return (torch.log(denominator).unsqueeze(1) - torch.log(numerator)).sum(1)


def log_taylor_softmax_loss(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    """Log-Taylor-softmax (de Brébisson & Vincent, ICLR 2016).

    ``L = -log[(1 + o_c + o_c²/2) / Σ_k (1 + o_k + o_k²/2)] = -log[(1 + o_c + o_c²/2)/(D + s + q/2)]``
    (the second-order Taylor expansion of ``exp``, which is > 0 everywhere). No hyper-parameter.
    Args: ``logits (B, D)``, ``target (B,)`` or ``(B, K)``. Returns a scalar or ``(B,)``.
    """
    check_reduction(reduction)
    _check_logits(logits, validate)
    tgt = spherical_targets(target, logits.shape[0], logits.shape[1], validate=validate)
    stats = (logits.gather(1, tgt), logits.square().sum(1), logits.sum(1))
    return reduce(_taylor_core(*stats, logits.shape[1]), reduction)


def log_taylor_softmax_loss_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`log_taylor_softmax_loss` from the statistics ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    check_reduction(reduction)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return reduce(_taylor_core(tl, sq_sum, sum, num_classes), reduction)


def _check_spherical_eps(eps: float) -> None:
    check_positive("eps", eps)


def _spherical_core(target_logits: Tensor, sq_sum: Tensor, num_classes: int, eps: float) -> Tensor:
    numerator = target_logits.square() + eps
    denominator = sq_sum + num_classes * eps
    return (torch.log(denominator).unsqueeze(1) - torch.log(numerator)).sum(1)


def log_spherical_softmax_loss(
    logits: Tensor,
    target: Tensor,
    eps: float = 0.01,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """Log-spherical-softmax (Vincent et al. 2015; de Brébisson & Vincent, ICLR 2016).

    ``L = -log[(o_c² + ε) / Σ_k (o_k² + ε)] = -log[(o_c² + ε)/(q + Dε)]``.

    Args: ``logits (B, D)``, ``target (B,)`` or ``(B, K)``; ``eps`` = ε > 0, the paper's stability
    hyper-parameter. Its value is not pinned by the paper or the public code; 0.01 is our choice -
    tune it. Returns a scalar or ``(B,)``.
    """
    check_reduction(reduction)
    _check_spherical_eps(eps)
    _check_logits(logits, validate)
    tgt = spherical_targets(target, logits.shape[0], logits.shape[1], validate=validate)
    core = _spherical_core(logits.gather(1, tgt), logits.square().sum(1), logits.shape[1], eps)
    return reduce(core, reduction)


def log_spherical_softmax_loss_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    eps: float = 0.01,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`log_spherical_softmax_loss` from ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    check_reduction(reduction)
    _check_spherical_eps(eps)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return reduce(_spherical_core(tl, sq_sum, num_classes, eps), reduction)


# --------------------------------------------------------------------------- modules


class ZLoss(nn.Module):
    """Module form of :func:`z_loss` (the de Brébisson-Vincent Z-loss, not the PaLM z-loss).

    Input ``(B, D)`` logits and ``(B,)`` / ``(B, K)`` targets; defaults ``a=1.0, b=0.0, eps=1e-12,
    reduction="mean"`` (tune a and b: the paper grid-searches them per task).
    """

    def __init__(
        self,
        a: float = 1.0,
        b: float = 0.0,
        eps: float = 1e-12,
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_z_params(a, b, eps)
        check_reduction(reduction)
        self.a, self.b, self.eps = float(a), float(b), float(eps)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return z_loss(
            logits, target, self.a, self.b, self.eps, self.reduction, validate=self.validate
        )

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, eps={self.eps}, reduction={self.reduction!r}"


class SphericalMSELoss(nn.Module):
    """Module form of :func:`spherical_mse_loss` (``q - 2 o_c + 1``)."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return spherical_mse_loss(logits, target, self.reduction, validate=self.validate)


class LogTaylorSoftmaxLoss(nn.Module):
    """Module form of :func:`log_taylor_softmax_loss`."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return log_taylor_softmax_loss(logits, target, self.reduction, validate=self.validate)


class LogSphericalSoftmaxLoss(nn.Module):
    """Module form of :func:`log_spherical_softmax_loss` (``eps`` = ε, default 0.01, tune it)."""

    def __init__(
        self, eps: float = 0.01, reduction: Reduction = "mean", *, validate: bool = True
    ) -> None:
        super().__init__()
        _check_spherical_eps(eps)
        check_reduction(reduction)
        self.eps = float(eps)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return log_spherical_softmax_loss(
            logits, target, self.eps, self.reduction, validate=self.validate
        )


#: The registry of spherical losses by name: each entry is the ``_from_stats`` form with its
#: defaults (a :class:`SphericalLossFn`). The reproduction and the tests enumerate it.
SPHERICAL_LOSSES: dict[str, SphericalLossFn] = {
    "z-loss": z_loss_from_stats,
    "spherical-mse": spherical_mse_loss_from_stats,
    "log-taylor-softmax": log_taylor_softmax_loss_from_stats,
    "log-spherical-softmax": log_spherical_softmax_loss_from_stats,
}

#: The dense twins of :data:`SPHERICAL_LOSSES`, by the same names.
DENSE_SPHERICAL_LOSSES: dict[str, Callable[..., Tensor]] = {
    "z-loss": z_loss,
    "spherical-mse": spherical_mse_loss,
    "log-taylor-softmax": log_taylor_softmax_loss,
    "log-spherical-softmax": log_spherical_softmax_loss,
}
