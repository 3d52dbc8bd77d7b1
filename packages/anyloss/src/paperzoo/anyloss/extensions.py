"""Not in the paper: the authors' extension's weighted BCE and hybrid loss, and a one-vs-rest
multi-class wrapper (the paper is binary only; multi-class is its stated future work).

Each is labelled as an extension in its docstring; the paper's method is :mod:`paperzoo.anyloss.losses`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.anyloss.confusion import MetricName
from paperzoo.anyloss.losses import (
    InputType,
    MetricFn,
    ZeroDivision,
    _binary_inputs,
    _check_target,
    _collapsed,
    _count,
    _host_checks,
    _metric_value,
    _Options,
)
from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive_int,
    check_reduction,
    check_unit_interval,
    reduce,
)

__all__ = [
    "HybridAnyLoss",
    "OneVsRestAnyLoss",
    "WeightedBCELoss",
    "hybrid_anyloss",
    "one_vs_rest_anyloss",
    "weighted_bce",
]

_INPUT_TYPES: tuple[InputType, ...] = ("logits", "probs")


def _value_checks(x: Tensor, y: Tensor, input_type: InputType) -> None:
    """Finite input, 0/1 labels and (for probabilities) the [0, 1] range, in one host sync."""
    flags = torch.stack(
        [
            ~torch.isfinite(x).all(),
            ((y != 0) & (y != 1)).any(),
            ((x < 0) | (x > 1)).any()
            if input_type == "probs"
            else torch.zeros((), dtype=torch.bool, device=x.device),
        ]
    ).tolist()
    if flags[0]:
        raise ValueError("input: expected finite values, got NaN or inf")
    if flags[1]:
        raise ValueError("target: expected labels in {0, 1}, got other values")
    if flags[2]:
        raise ValueError("input: expected probabilities in [0, 1] with input_type='probs'")


def _wbce_values(input: Tensor, y: Tensor, input_type: InputType) -> Tensor:
    """Per-example weighted BCE, ``(N,)``; weights from the batch's class counts."""
    n = y.shape[0]
    n_pos = y.sum()
    w = torch.where(y > 0.5, (n - n_pos) / n, n_pos / n)  # w1 = n0/N on positives, w0 = n1/N
    if input_type == "logits":
        return F.binary_cross_entropy_with_logits(input, y, weight=w, reduction="none")
    return F.binary_cross_entropy(input, y, weight=w, reduction="none")


def weighted_bce(
    input: Tensor,
    target: Tensor,
    *,
    input_type: InputType = "logits",
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    r"""Class-weighted BCE of the authors' extension (``WBCE``): each class weighted by the other's share.

    .. math::  \ell_i = -\big[w_1 y_i \log p_i + w_0 (1 - y_i) \log(1 - p_i)\big],\quad
               w_1 = n_0 / N,\; w_0 = n_1 / N

    with the counts of the batch (so the loss couples the examples through the weights).

    Extension, not in the paper: the AnyLoss paper compares with BCE and MSE only.
    Deviation: the extension adds ``1e-5`` inside both logarithms; we use the exact, stable
    ``binary_cross_entropy_with_logits`` (logits) or torch's clamped ``binary_cross_entropy``
    (probabilities).

    Args:
        input: ``(N,)`` or ``(N, 1)`` logits (default) or probabilities.
        target: ``(N,)`` or ``(N, 1)`` labels in ``{0, 1}``.
        input_type: ``'logits'`` or ``'probs'``.
        reduction: ``'mean'`` (default, as the extension), ``'sum'`` or ``'none'`` (``(N,)``).
        validate: check finiteness, labels and the probability range (one host sync).

    Returns:
        A 0-D tensor, or ``(N,)`` with ``reduction='none'``.

    Raises:
        TypeError / ValueError: as :func:`~paperzoo.anyloss.anyloss`.
    """
    red = check_reduction(reduction)
    kind: InputType = check_choice("input_type", input_type, _INPUT_TYPES)
    check_float_tensor("input", input)
    _p, y = _binary_inputs(input, target, kind)
    x = input.reshape(-1)
    if validate:
        _value_checks(x, y, kind)
    return reduce(_wbce_values(x, y, kind), red)


class WeightedBCELoss(nn.Module):
    """Module twin of :func:`weighted_bce` (extension, not in the paper). Shapes as there."""

    def __init__(
        self,
        *,
        input_type: InputType = "logits",
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.input_type: InputType = check_choice("input_type", input_type, _INPUT_TYPES)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``input``, ``target``: ``(N,)`` or ``(N, 1)``."""
        return weighted_bce(
            input,
            target,
            input_type=self.input_type,
            reduction=self.reduction,
            validate=self.validate,
        )


def _hybrid(opts: _Options, r: float, input: Tensor, target: Tensor, validate: bool) -> Tensor:
    p, y = _binary_inputs(input, target, opts.input_type)
    value, y_hat, n_pos = _metric_value(opts, p, y, amplify=False)
    _host_checks(opts, input, y, y_hat, n_pos, validate)
    return (1 - r) * _wbce_values(input.reshape(-1), y, opts.input_type).mean() + r * (1 - value)


def hybrid_anyloss(
    input: Tensor,
    target: Tensor,
    metric: MetricName | MetricFn = "f1",
    r: float = 0.5,
    *,
    beta: float = 1.0,
    input_type: InputType = "logits",
    gmean_sqrt: bool = True,
    eps: float = 1e-7,
    zero_division: ZeroDivision = "eps",
    validate: bool = True,
) -> Tensor:
    r"""The extension's hybrid ``(1 - r)·WBCE(p) + r·(1 - M(p))``, with ``M`` on the probabilities
    themselves (no approximation function), as its ``WBCEFL`` / ``WBCEGL`` / ``WBCEBL``.

    Extension, not in the paper (authors' unpublished ``anyloss_extension``); ``r = 0.5`` is our
    default (the extension sets ``r`` globally per experiment).

    Args:
        input: ``(N,)`` or ``(N, 1)`` logits (default) or probabilities.
        target: ``(N,)`` or ``(N, 1)`` labels in ``{0, 1}``.
        metric: as :func:`~paperzoo.anyloss.anyloss`.
        r: the metric's share in ``[0, 1]``.
        beta, input_type, gmean_sqrt, eps, zero_division, validate: as
            :func:`~paperzoo.anyloss.anyloss`.

    Returns:
        A 0-D tensor.

    Raises:
        TypeError / ValueError: as :func:`~paperzoo.anyloss.anyloss`; ``r`` outside ``[0, 1]``.
    """
    rr = check_unit_interval("r", r)
    opts = _Options.make(
        metric, beta, 73.0, input_type, gmean_sqrt, eps, zero_division, 0.0, "mean"
    )
    return _hybrid(opts, rr, input, target, validate)


class HybridAnyLoss(nn.Module):
    """Module twin of :func:`hybrid_anyloss` (extension, not in the paper). Shapes as there."""

    def __init__(
        self,
        metric: MetricName | MetricFn = "f1",
        r: float = 0.5,
        *,
        beta: float = 1.0,
        input_type: InputType = "logits",
        gmean_sqrt: bool = True,
        eps: float = 1e-7,
        zero_division: ZeroDivision = "eps",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.r = check_unit_interval("r", r)
        self.opts = _Options.make(
            metric, beta, 73.0, input_type, gmean_sqrt, eps, zero_division, 0.0, "mean"
        )
        self.validate = validate

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``input``, ``target``: ``(N,)`` or ``(N, 1)``."""
        return _hybrid(self.opts, self.r, input, target, self.validate)


def _ovr(
    opts: _Options, num_classes: int | None, input: Tensor, target: Tensor, validate: bool
) -> tuple[Tensor, Tensor, Tensor]:
    check_float_tensor("input", input)
    if input.dim() != 2 or input.shape[1] < 2:
        raise ValueError(f"input: expected shape (N, K) with K >= 2, got {tuple(input.shape)}")
    k = input.shape[1]
    if num_classes is not None and k != num_classes:
        raise ValueError(f"input: expected {num_classes} columns (num_classes), got {k}")
    check_nonempty("input", input)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.dim() == 2 and target.shape[1] == 1:
        target = target.reshape(-1)
    _check_target(target, input, "(N,)")
    check_labels("target", target, n=input.shape[0], num_classes=k, like=input, validate=validate)
    p = torch.softmax(input, dim=1) if opts.input_type == "logits" else input
    y = F.one_hot(target, k).to(input.dtype)
    value, y_hat, n_pos = _metric_value(opts, p, y)
    _host_checks(opts, input, y, y_hat, n_pos, validate)
    return 1 - value.mean(), y_hat, n_pos


def one_vs_rest_anyloss(
    input: Tensor,
    target: Tensor,
    metric: MetricName | MetricFn = "f1",
    *,
    num_classes: int | None = None,
    beta: float = 1.0,
    L: float = 73.0,
    input_type: InputType = "logits",
    gmean_sqrt: bool = True,
    eps: float = 1e-7,
    zero_division: ZeroDivision = "eps",
    collapse_tol: float = 1e-2,
    validate: bool = True,
) -> Tensor:
    r"""Macro one-vs-rest AnyLoss for ``K`` classes: ``1 - mean_k M_k``.

    Class ``k``'s probabilities are column ``k`` of ``softmax(input)`` (or of ``input`` with
    ``input_type='probs'``), its labels ``target == k``; each column gets the binary AnyLoss
    machinery (approximation, soft confusion matrix, metric), all columns at once.

    Extension, not in the paper (binary only; multi-class is its future work). A class absent
    from the batch has F-beta 0 (a constant term, no gradient) and an undefined G-mean /
    balanced accuracy (``zero_division``): use class-balanced batches.

    Args:
        input: ``(N, K)`` logits or probabilities, ``K >= 2``.
        target: ``(N,)`` integer class labels in ``[0, K)``.
        metric: as :func:`~paperzoo.anyloss.anyloss`; a callable gets ``(K,)`` cells and must
            return ``(K,)``.
        num_classes: ``K``, checked against ``input`` when given.
        beta, L, input_type, gmean_sqrt, eps, zero_division, collapse_tol, validate: as
            :func:`~paperzoo.anyloss.anyloss`.

    Returns:
        A 0-D tensor.

    Raises:
        TypeError: non-floating ``input``, non-integer ``target``.
        ValueError: wrong shapes, empty batch, labels out of range, NaN/inf, bad options.
    """
    opts = _Options.make(
        metric, beta, L, input_type, gmean_sqrt, eps, zero_division, collapse_tol, "mean"
    )
    if num_classes is not None:
        check_positive_int("num_classes", num_classes, minimum=2)
    return _ovr(opts, num_classes, input, target, validate)[0]


class OneVsRestAnyLoss(nn.Module):
    """Module twin of :func:`one_vs_rest_anyloss` (extension, not in the paper), with the
    collapse counters of :class:`~paperzoo.anyloss.AnyLoss` (a batch counts when any class
    collapses). ``input`` ``(N, K)``, ``target`` ``(N,)``; output 0-D."""

    seen_batches: Tensor
    collapsed_batches: Tensor

    def __init__(
        self,
        metric: MetricName | MetricFn = "f1",
        num_classes: int | None = None,
        *,
        beta: float = 1.0,
        L: float = 73.0,
        input_type: InputType = "logits",
        gmean_sqrt: bool = True,
        eps: float = 1e-7,
        zero_division: ZeroDivision = "eps",
        collapse_tol: float = 1e-2,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.opts = _Options.make(
            metric, beta, L, input_type, gmean_sqrt, eps, zero_division, collapse_tol, "mean"
        )
        self.num_classes = (
            None if num_classes is None else check_positive_int("num_classes", num_classes, 2)
        )
        self.validate = validate
        self.register_buffer("seen_batches", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer(
            "collapsed_batches", torch.zeros((), dtype=torch.long), persistent=False
        )

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``input``: ``(N, K)``; ``target``: ``(N,)`` class labels."""
        loss, y_hat, n_pos = _ovr(self.opts, self.num_classes, input, target, self.validate)
        _count(self, _collapsed(y_hat, n_pos, self.opts.collapse_tol))
        return loss
