"""The spherical loss family: the Z-loss and the other members used as baselines.

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
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DENSE_SPHERICAL_LOSSES",
    "SPHERICAL_LOSSES",
    "LogSphericalSoftmaxLoss",
    "LogTaylorSoftmaxLoss",
    "Reduction",
    "SphericalLossFn",
    "SphericalMSELoss",
    "ZLoss",
    "log_spherical_softmax",
    "log_spherical_softmax_from_stats",
    "log_taylor_softmax",
    "log_taylor_softmax_from_stats",
    "spherical_mse",
    "spherical_mse_from_stats",
    "spherical_stats",
    "z_loss",
    "z_loss_from_stats",
]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")


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


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_float(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def _check_finite(name: str, x: Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")


def _check_target(target: Tensor, batch: int, num_classes: int, validate: bool) -> Tensor:
    """Validate ``target`` ((B,) or (B, K) integer in [0, D)) and return it as (B, K) int64."""
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must be an integer (class index) tensor, got dtype {target.dtype}")
    if target.dim() not in (1, 2) or target.shape[0] != batch:
        raise ValueError(
            f"target must have shape ({batch},) or ({batch}, K), got {tuple(target.shape)}"
        )
    if target.dim() == 2 and target.shape[1] == 0:
        raise ValueError("target of shape (B, K) needs K >= 1 targets per example, got K = 0")
    if validate and target.numel() > 0:
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"target values must lie in [0, {num_classes}), got values in [{lo}, {hi}]"
            )
    target = target.long()
    return target.unsqueeze(1) if target.dim() == 1 else target


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 2:
        raise ValueError(f"num_classes (D) must be >= 2, got {num_classes}")


def _check_logits(logits: Tensor, validate: bool) -> None:
    _check_float("logits", logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D (B, D), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("logits is an empty batch (B = 0); a spherical loss needs B >= 1")
    _check_num_classes(logits.shape[1])
    if validate:
        _check_finite("logits", logits)


def _check_stats(
    target_logits: Tensor, sq_sum: Tensor, sum_: Tensor, num_classes: int, validate: bool
) -> Tensor:
    """Validate the statistics; returns target_logits as (B, K)."""
    _check_float("target_logits", target_logits)
    _check_float("sq_sum", sq_sum)
    _check_float("sum", sum_)
    _check_num_classes(num_classes)
    if target_logits.dim() == 1:
        target_logits = target_logits.unsqueeze(1)
    if target_logits.dim() != 2:
        raise ValueError(
            f"target_logits must have shape (B,) or (B, K), got {tuple(target_logits.shape)}"
        )
    batch = target_logits.shape[0]
    if batch == 0:
        raise ValueError("target_logits is an empty batch (B = 0); a spherical loss needs B >= 1")
    for name, t in (("sq_sum", sq_sum), ("sum", sum_)):
        if t.shape != (batch,):
            raise ValueError(f"{name} must have shape ({batch},), got {tuple(t.shape)}")
    if validate:
        _check_finite("target_logits", target_logits)
        _check_finite("sq_sum", sq_sum)
        _check_finite("sum", sum_)
    return target_logits


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


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
    tgt = _check_target(target, logits.shape[0], logits.shape[1], validate=True)
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
    if not (isinstance(a, (int, float)) and math.isfinite(a) and a > 0):
        raise ValueError(f"a (softness) must be a finite number > 0, got {a!r}")
    if not (isinstance(b, (int, float)) and math.isfinite(b)):
        raise ValueError(f"b (target z-score) must be a finite number, got {b!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


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
    _check_reduction(reduction)
    _check_z_params(a, b, eps)
    _check_logits(logits, validate)
    tgt = _check_target(target, logits.shape[0], logits.shape[1], validate)
    var, mean = torch.var_mean(logits, dim=1, correction=0)
    return _reduce(_z_loss_core(logits.gather(1, tgt), mean, var, a, b, eps), reduction)


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
    _check_reduction(reduction)
    _check_z_params(a, b, eps)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    mean, var = _variance_from_stats(sq_sum, sum, num_classes)
    return _reduce(_z_loss_core(tl, mean, var, a, b, eps), reduction)


# --------------------------------------------------------------------------- other members


def _mse_core(target_logits: Tensor, sq_sum: Tensor) -> Tensor:
    k = target_logits.shape[1]
    return sq_sum - 2.0 * target_logits.sum(1) + float(k)


def spherical_mse(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    """Squared error to the one-hot (K-hot) target, ``||o - y||² = q - 2 o_c + 1``.

    Args: ``logits (B, D)``, ``target (B,)`` or ``(B, K)``. Returns a scalar or ``(B,)``.
    The loss of Vincent et al. (2015); no hyper-parameter.
    """
    _check_reduction(reduction)
    _check_logits(logits, validate)
    tgt = _check_target(target, logits.shape[0], logits.shape[1], validate)
    return _reduce(_mse_core(logits.gather(1, tgt), logits.square().sum(1)), reduction)


def spherical_mse_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`spherical_mse` from the statistics ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    _check_reduction(reduction)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return _reduce(_mse_core(tl, sq_sum), reduction)


def _taylor_core(target_logits: Tensor, sq_sum: Tensor, sum_: Tensor, num_classes: int) -> Tensor:
    numerator = 1.0 + target_logits + 0.5 * target_logits.square()
    denominator = num_classes + sum_ + 0.5 * sq_sum
    return (torch.log(denominator).unsqueeze(1) - torch.log(numerator)).sum(1)


def log_taylor_softmax(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    """Log-Taylor-softmax (de Brébisson & Vincent, ICLR 2016).

    ``L = -log[(1 + o_c + o_c²/2) / Σ_k (1 + o_k + o_k²/2)] = -log[(1 + o_c + o_c²/2)/(D + s + q/2)]``
    (the second-order Taylor expansion of ``exp``, which is > 0 everywhere). No hyper-parameter.
    Args: ``logits (B, D)``, ``target (B,)`` or ``(B, K)``. Returns a scalar or ``(B,)``.
    """
    _check_reduction(reduction)
    _check_logits(logits, validate)
    tgt = _check_target(target, logits.shape[0], logits.shape[1], validate)
    stats = (logits.gather(1, tgt), logits.square().sum(1), logits.sum(1))
    return _reduce(_taylor_core(*stats, logits.shape[1]), reduction)


def log_taylor_softmax_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`log_taylor_softmax` from the statistics ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    _check_reduction(reduction)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return _reduce(_taylor_core(tl, sq_sum, sum, num_classes), reduction)


def _check_spherical_eps(eps: float) -> None:
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps (log-spherical-softmax) must be a finite number > 0, got {eps!r}")


def _spherical_core(target_logits: Tensor, sq_sum: Tensor, num_classes: int, eps: float) -> Tensor:
    numerator = target_logits.square() + eps
    denominator = sq_sum + num_classes * eps
    return (torch.log(denominator).unsqueeze(1) - torch.log(numerator)).sum(1)


def log_spherical_softmax(
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
    _check_reduction(reduction)
    _check_spherical_eps(eps)
    _check_logits(logits, validate)
    tgt = _check_target(target, logits.shape[0], logits.shape[1], validate)
    core = _spherical_core(logits.gather(1, tgt), logits.square().sum(1), logits.shape[1], eps)
    return _reduce(core, reduction)


def log_spherical_softmax_from_stats(
    target_logits: Tensor,
    sq_sum: Tensor,
    sum: Tensor,
    num_classes: int,
    eps: float = 0.01,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    """:func:`log_spherical_softmax` from ``(o_c (B, K), q (B,), s (B,))`` and ``D``."""
    _check_reduction(reduction)
    _check_spherical_eps(eps)
    tl = _check_stats(target_logits, sq_sum, sum, num_classes, validate)
    return _reduce(_spherical_core(tl, sq_sum, num_classes, eps), reduction)


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
        _check_reduction(reduction)
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
    """Module form of :func:`spherical_mse` (``q - 2 o_c + 1``)."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return spherical_mse(logits, target, self.reduction, validate=self.validate)


class LogTaylorSoftmaxLoss(nn.Module):
    """Module form of :func:`log_taylor_softmax`."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return log_taylor_softmax(logits, target, self.reduction, validate=self.validate)


class LogSphericalSoftmaxLoss(nn.Module):
    """Module form of :func:`log_spherical_softmax` (``eps`` = ε, default 0.01, tune it)."""

    def __init__(
        self, eps: float = 0.01, reduction: Reduction = "mean", *, validate: bool = True
    ) -> None:
        super().__init__()
        _check_spherical_eps(eps)
        _check_reduction(reduction)
        self.eps = float(eps)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return log_spherical_softmax(
            logits, target, self.eps, self.reduction, validate=self.validate
        )


#: The registry of spherical losses by name: each entry is the ``_from_stats`` form with its
#: defaults (a :class:`SphericalLossFn`). The reproduction and the tests enumerate it.
SPHERICAL_LOSSES: dict[str, SphericalLossFn] = {
    "z-loss": z_loss_from_stats,
    "spherical-mse": spherical_mse_from_stats,
    "log-taylor-softmax": log_taylor_softmax_from_stats,
    "log-spherical-softmax": log_spherical_softmax_from_stats,
}

#: The dense twins of :data:`SPHERICAL_LOSSES`, by the same names.
DENSE_SPHERICAL_LOSSES: dict[str, Callable[..., Tensor]] = {
    "z-loss": z_loss,
    "spherical-mse": spherical_mse,
    "log-taylor-softmax": log_taylor_softmax,
    "log-spherical-softmax": log_spherical_softmax,
}
