r"""AnyLoss (Han, Moniz & Chawla, 2024): a confusion-matrix metric as a differentiable loss.

The network's probability :math:`p_i = \sigma(\text{logit}_i)` is pushed towards 0 or 1 by the
approximation function :math:`A(p) = \sigma(L (p - \tfrac12))` (Eq. 2), the amplified values
:math:`\hat y_i = A(p_i)` replace hard predictions in the confusion matrix
(:func:`~paperzoo.anyloss.soft_confusion`), and the loss is :math:`1 - M(TN, FP, FN, TP)` for any
metric ``M`` of the four cells (Eq. 4). One private computation, :func:`_binary_anyloss`, serves
the function :func:`anyloss` and every module.

The loss couples the batch (it is one value of the batch's confusion matrix): there is no
per-example ``reduction="none"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.anyloss.confusion import (
    METRICS,
    NEEDS_BOTH_CLASSES,
    MetricName,
    _confusion_from_sums,
    _sums,
)
from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_float_tensor,
    check_nonempty,
    check_positive,
    check_reduction,
    check_unit_interval,
)

__all__ = [
    "AccuracyAnyLoss",
    "AnyLoss",
    "BalancedAccuracyAnyLoss",
    "CollapseWarning",
    "DegenerateBatchWarning",
    "FBetaAnyLoss",
    "GMeanAnyLoss",
    "InputType",
    "MetricFn",
    "ZeroDivision",
    "anyloss",
    "approximation",
]

InputType = Literal["logits", "probs"]
"""What the loss receives: logits (``p = sigmoid(input)``, the default) or probabilities."""
ZeroDivision = Literal["eps", "raise"]
"""G-mean / balanced accuracy on a one-class batch: clamp by ``eps`` (and warn) or raise."""
MetricFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""A user metric ``metric(tn, fp, fn, tp) -> Tensor`` of the four (soft) cells, higher is better."""

_INPUT_TYPES: tuple[InputType, ...] = ("logits", "probs")
_ZERO_DIVISION: tuple[ZeroDivision, ...] = ("eps", "raise")


class CollapseWarning(UserWarning):
    """The batch holds both classes but every amplified prediction is saturated on one side.

    The model predicts one class for the whole batch, ``A`` is flat there and the gradient
    (nearly) vanishes: training may stay at the constant classifier (spec section 3.6; seen for
    the accuracy and balanced-accuracy losses on 90/10 data). :class:`AnyLoss` also counts such
    batches in ``collapsed_batches``.
    """


class DegenerateBatchWarning(UserWarning):
    """G-mean or balanced accuracy of a batch that holds only one class (undefined; eps used)."""


def approximation(p: Tensor, L: float = 73.0) -> Tensor:
    r"""The approximation function :math:`A(p) = 1 / (1 + e^{-L (p - 1/2)})` (paper Eq. 2).

    Computed as ``torch.sigmoid(L * (p - 0.5))`` (never an explicit ``exp``). ``A(1/2) = 1/2``,
    ``A`` is increasing, and :math:`dA/dp = L A (1 - A)`, so :math:`A'(1/2) = L/4`.

    Float32 saturation: mathematically ``A(p)`` lies in ``(0, 1)``, but in float32 with
    ``L = 73`` it rounds to exactly 1.0 for ``p >= ~0.728`` (``sigmoid(x) == 1`` for
    ``x >~ 16.6``), where its gradient is exactly 0 (on the low side ``A(0) = 1.4e-16`` does not
    underflow: a tiny, non-zero gradient); in float64 ``A(1) = 1 - 2e-16``. Confidently
    classified examples (right or wrong) therefore get (almost) no gradient. This is the paper's
    function, kept as is.

    Args:
        p: probabilities of any shape (the function is meant for ``p`` in ``[0, 1]``).
        L: the amplification ``L > 0``; default 73 (the official code). ``L > 4`` is needed for
            ``A`` to amplify at all (``A'(1/2) = L/4``); useful range about ``[10, 100]``.

    Returns:
        ``A(p)``, same shape and dtype as ``p``.

    Raises:
        TypeError: ``p`` not a floating-point tensor, ``L`` not a real number.
        ValueError: ``L <= 0`` or not finite.
    """
    check_float_tensor("p", p)
    amp = check_positive("L", L)
    return torch.sigmoid(amp * (p - 0.5))


@dataclass(frozen=True)
class _Options:
    """Checked loss options (built once by a module, per call by the function)."""

    metric: str | MetricFn
    beta: float
    L: float
    input_type: InputType
    gmean_sqrt: bool
    eps: float
    zero_division: ZeroDivision
    collapse_tol: float

    @classmethod
    def make(
        cls,
        metric: object,
        beta: object,
        L: object,
        input_type: object,
        gmean_sqrt: object,
        eps: object,
        zero_division: object,
        collapse_tol: object,
        reduction: object,
    ) -> _Options:
        check_reduction(reduction)
        if reduction != "mean":
            raise ValueError(
                "reduction: AnyLoss is one value of the batch's confusion matrix (the examples "
                f"are coupled), so only 'mean' is offered; got {reduction!r}"
            )
        if isinstance(metric, str):
            check_choice("metric", metric, list(METRICS))
        elif not callable(metric):
            raise TypeError(
                f"metric: expected one of {list(METRICS)} or a callable (tn, fp, fn, tp) -> "
                f"Tensor, got {type(metric).__name__}"
            )
        b = check_positive("beta", beta)
        if metric == "f1" and b != 1.0:
            raise ValueError(f"beta: metric='f1' fixes beta = 1; use metric='fbeta', got {beta!r}")
        if not isinstance(gmean_sqrt, bool):
            raise TypeError(f"gmean_sqrt: expected a bool, got {type(gmean_sqrt).__name__}")
        tol = check_unit_interval("collapse_tol", collapse_tol)
        if tol >= 0.5:
            raise ValueError(f"collapse_tol: expected a value in [0, 0.5), got {collapse_tol!r}")
        return cls(
            metric=metric,
            beta=b,
            L=check_positive("L", L),
            input_type=check_choice("input_type", input_type, _INPUT_TYPES),  # type: ignore[arg-type]
            gmean_sqrt=gmean_sqrt,
            eps=check_positive("eps", eps),
            zero_division=check_choice("zero_division", zero_division, _ZERO_DIVISION),  # type: ignore[arg-type]
            collapse_tol=tol,
        )


def _check_target(target: object, like: Tensor, shape_hint: str) -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.is_complex():
        raise TypeError(f"target: expected real 0/1 labels, got dtype {target.dtype}")
    if target.device != like.device:
        raise ValueError(f"target: expected device {like.device} (like input), got {target.device}")
    ok_rank = target.dim() == 1 or (target.dim() == 2 and target.shape[1] == 1)
    if not ok_rank or target.shape[0] != like.shape[0]:
        raise ValueError(
            f"target: expected shape {shape_hint} matching input {tuple(like.shape)}, got "
            f"{tuple(target.shape)}"
        )
    return target


def _binary_inputs(input: Tensor, target: Tensor, input_type: InputType) -> tuple[Tensor, Tensor]:
    """``(p, y)``, both ``(N,)`` in ``input``'s dtype; shape and type checks (no host sync)."""
    check_float_tensor("input", input)
    if input.dim() == 2 and input.shape[1] > 1:
        raise ValueError(
            f"input: AnyLoss is binary and expects shape (N,) or (N, 1), got "
            f"{tuple(input.shape)}; for K classes use OneVsRestAnyLoss"
        )
    if input.dim() not in (1, 2):
        raise ValueError(f"input: expected shape (N,) or (N, 1), got {tuple(input.shape)}")
    check_nonempty("input", input)
    _check_target(target, input, "(N,) or (N, 1)")
    x = input.reshape(-1)
    p = torch.sigmoid(x) if input_type == "logits" else x
    return p, target.reshape(-1).to(x.dtype)


def _metric_value(
    opts: _Options, p: Tensor, y: Tensor, amplify: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """``(metric value, y_hat, n_pos)``: value ``()`` for ``(N,)`` input, ``(K,)`` for ``(N, K)``.

    ``amplify=False`` uses ``y_hat = p`` (the hybrid loss of the extension).
    """
    y_hat = torch.sigmoid(opts.L * (p - 0.5)) if amplify else p
    sums = _sums(y_hat, y)
    if isinstance(opts.metric, str):
        value = METRICS[opts.metric](sums, opts.beta, opts.gmean_sqrt, opts.eps)
        return value, y_hat, sums.n_pos
    c = _confusion_from_sums(sums)
    value = opts.metric(c.tn, c.fp, c.fn, c.tp)
    if not isinstance(value, Tensor):
        raise TypeError(f"metric: the callable must return a Tensor, got {type(value).__name__}")
    if value.shape != c.tp.shape:
        raise ValueError(
            f"metric: the callable must return one value per confusion matrix, shape "
            f"{tuple(c.tp.shape)}, got {tuple(value.shape)}"
        )
    return value, y_hat, sums.n_pos


def _collapsed(y_hat: Tensor, n_pos: Tensor, tol: float) -> Tensor:
    """0-D bool: some column holds both classes but all its ``y_hat`` are ``< tol`` or ``> 1 - tol``."""
    n = y_hat.shape[0]
    both = (n_pos > 0) & (n_pos < n)
    flat = (y_hat.amax(0) < tol) | (y_hat.amin(0) > 1 - tol)
    return (both & flat).any()


def _host_checks(
    opts: _Options, x: Tensor, y: Tensor, y_hat: Tensor, n_pos: Tensor, validate: bool
) -> None:
    """Input validation, degenerate-batch and collapse warnings in one host sync.

    Runs when ``validate``; with ``validate=False`` only ``zero_division='raise'`` forces it
    (the user asked for that check).
    """
    needs_both = isinstance(opts.metric, str) and opts.metric in NEEDS_BOTH_CLASSES
    if not (validate or (needs_both and opts.zero_division == "raise")):
        return
    n = y.shape[0]
    flags = [
        ~torch.isfinite(x).all(),
        ((y != 0) & (y != 1)).any(),
        ((x < 0) | (x > 1)).any()
        if opts.input_type == "probs"
        else torch.zeros((), dtype=torch.bool, device=x.device),
        ((n_pos == 0) | (n_pos == n)).any(),
        _collapsed(y_hat, n_pos, opts.collapse_tol),
    ]
    nonfinite, bad_target, bad_probs, one_class, collapsed = torch.stack(flags).tolist()
    if validate and nonfinite:
        raise ValueError("input: expected finite values, got NaN or inf")
    if validate and bad_target:
        raise ValueError("target: expected labels in {0, 1}, got other values")
    if validate and bad_probs:
        raise ValueError("input: expected probabilities in [0, 1] with input_type='probs'")
    if needs_both and one_class:
        msg = (
            f"{opts.metric}: undefined on a batch holding one class only (n1 = 0 or n0 = 0); "
            "use stratified batches"
        )
        if opts.zero_division == "raise":
            raise ValueError(f"zero_division='raise': {msg}")
        warnings.warn(
            f"{msg}; the denominator is clamped to eps", DegenerateBatchWarning, stacklevel=4
        )
    if validate and collapsed:
        warnings.warn(
            "AnyLoss: every prediction of a two-class batch is saturated on one side of 1/2 "
            f"(A(p) < {opts.collapse_tol} or > {1 - opts.collapse_tol}): the classifier is "
            "constant here and its gradient nearly vanishes",
            CollapseWarning,
            stacklevel=4,
        )


def _count(module: nn.Module, collapsed: Tensor) -> None:
    """Add one batch (and ``collapsed``) to a module's counters, on the inputs' device.

    The counters follow the inputs, so a loss module used on CUDA without ``.to(device)`` works.
    """
    for name, add in (
        ("seen_batches", torch.ones_like(collapsed, dtype=torch.long)),
        ("collapsed_batches", collapsed.long()),
    ):
        buf: Tensor = getattr(module, name)
        if buf.device != collapsed.device:
            buf = buf.to(collapsed.device)
            setattr(module, name, buf)
        with torch.no_grad():
            buf.add_(add)


def _binary_anyloss(
    opts: _Options, input: Tensor, target: Tensor, validate: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The one computation behind :func:`anyloss` and :class:`AnyLoss`: ``(loss, y_hat, n_pos)``."""
    p, y = _binary_inputs(input, target, opts.input_type)
    value, y_hat, n_pos = _metric_value(opts, p, y)
    _host_checks(opts, input, y, y_hat, n_pos, validate)
    return 1 - value, y_hat, n_pos


def anyloss(
    input: Tensor,
    target: Tensor,
    metric: MetricName | MetricFn = "f1",
    *,
    beta: float = 1.0,
    L: float = 73.0,
    input_type: InputType = "logits",
    gmean_sqrt: bool = True,
    eps: float = 1e-7,
    zero_division: ZeroDivision = "eps",
    collapse_tol: float = 1e-2,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    r"""AnyLoss: ``1 - M`` of the batch's amplified soft confusion matrix (paper Eq. 2-4).

    .. math::

        \hat y_i = \sigma\big(L (p_i - \tfrac12)\big),\quad
        \mathcal L = 1 - M\big(TN(\hat y), FP(\hat y), FN(\hat y), TP(\hat y)\big)

    Built-in ``M`` (the official closed forms, :data:`~paperzoo.anyloss.METRICS`): ``accuracy``
    :math:`(N - n_1 - S + 2TP)/N`; ``fbeta`` :math:`(1+\beta^2)TP / (\beta^2 n_1 + S)` (``f1``:
    β = 1); ``gmean`` :math:`\sqrt{TP \cdot TN / (n_1 n_0)}`; ``balanced_accuracy``
    :math:`(n_0 TP + n_1 TN) / (2 n_1 n_0)`; or a callable ``metric(tn, fp, fn, tp)`` (e.g. MCC,
    Jaccard) returning a 0-D tensor.

    Degenerate batches: with no positive, F-beta is 0 and the loss is the constant 1 (zero
    gradient); G-mean and balanced accuracy are undefined and follow ``zero_division``. Use
    stratified batches.

    Deviation: the official Keras losses use the whole training-set size ``y_train.shape[0]`` as
    ``N`` inside every mini-batch (accuracy, G-mean, balanced accuracy); we use the batch's own
    counts, as the authors' extension does. ``eps`` clamps only denominators that can vanish (the
    extension adds ``1e-5`` to all of them). G-mean takes ``sqrt(x)`` exactly, but below ``eps``
    its gradient is 0 instead of the infinite derivative of ``sqrt`` at 0.

    Args:
        input: ``(N,)`` or ``(N, 1)`` logits (default) or probabilities (``input_type='probs'``);
            the approximation is applied to probabilities, never to logits.
        target: ``(N,)`` or ``(N, 1)`` labels in ``{0, 1}`` (float, integer or bool).
        metric: a name of :data:`~paperzoo.anyloss.MetricName` or a callable of the four cells.
        beta: β of F-beta (``> 0``; only with ``metric='fbeta'``; ``'f1'`` fixes it to 1).
        L: amplification of :func:`approximation` (``> 0``, default 73 as the official code).
        input_type: ``'logits'`` or ``'probs'``.
        gmean_sqrt: G-mean with the square root (paper, official code; default) or the
            extension's ``TP·TN/(n1 n0)`` without it.
        eps: clamp of vanishing denominators, default ``1e-7``.
        zero_division: ``'eps'`` (default: clamp and warn with
            :class:`DegenerateBatchWarning`) or ``'raise'`` (ValueError; costs a host sync even
            with ``validate=False``).
        collapse_tol: a two-class batch whose ``y_hat`` are all ``< tol`` or all ``> 1 - tol``
            is a collapse (:class:`CollapseWarning` when ``validate``).
        reduction: only ``'mean'`` (accepted for API uniformity; the loss is batch-level).
        validate: check finiteness, the labels and the probability range, and warn on
            degenerate or collapsed batches (one host sync); turn off in tight loops.

    Returns:
        A 0-D tensor in ``input``'s dtype, in ``[0, 1]`` for the built-in metrics.

    Raises:
        TypeError: non-floating ``input``, non-tensor ``target``, a metric that is neither a
            name nor a callable, a callable returning a non-tensor.
        ValueError: ``(N, K > 1)`` input (use :class:`~paperzoo.anyloss.OneVsRestAnyLoss`),
            shape mismatch, empty batch, NaN/inf, labels outside ``{0, 1}``, probabilities
            outside ``[0, 1]``, ``L``/``beta``/``eps`` ``<= 0``, an unknown metric name, a
            callable returning a non-scalar, ``reduction`` other than ``'mean'``.
    """
    opts = _Options.make(
        metric, beta, L, input_type, gmean_sqrt, eps, zero_division, collapse_tol, reduction
    )
    return _binary_anyloss(opts, input, target, validate)[0]


class AnyLoss(nn.Module):
    """Module twin of :func:`anyloss` (same arguments and defaults), with a collapse counter.

    Buffers (not saved in the ``state_dict``): ``seen_batches`` and ``collapsed_batches`` (two-class
    batches whose amplified predictions were all saturated on one side, see
    :class:`CollapseWarning`), updated on the device without a host sync, so they count even with
    ``validate=False``; :meth:`reset_counters` zeroes them.

    Shapes: ``input`` ``(N,)`` or ``(N, 1)``; ``target`` the same; output a 0-D tensor.
    """

    seen_batches: Tensor
    collapsed_batches: Tensor

    def __init__(
        self,
        metric: MetricName | MetricFn = "f1",
        *,
        beta: float = 1.0,
        L: float = 73.0,
        input_type: InputType = "logits",
        gmean_sqrt: bool = True,
        eps: float = 1e-7,
        zero_division: ZeroDivision = "eps",
        collapse_tol: float = 1e-2,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.opts = _Options.make(
            metric, beta, L, input_type, gmean_sqrt, eps, zero_division, collapse_tol, reduction
        )
        self.reduction: Reduction = reduction
        self.validate = validate
        self.register_buffer("seen_batches", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer(
            "collapsed_batches", torch.zeros((), dtype=torch.long), persistent=False
        )

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``input``: ``(N,)``/``(N, 1)`` logits or probabilities; ``target``: 0/1 labels."""
        loss, y_hat, n_pos = _binary_anyloss(self.opts, input, target, self.validate)
        _count(self, _collapsed(y_hat, n_pos, self.opts.collapse_tol))
        return loss

    def reset_counters(self) -> None:
        """Zero ``seen_batches`` and ``collapsed_batches``."""
        self.seen_batches.zero_()
        self.collapsed_batches.zero_()

    def extra_repr(self) -> str:
        o = self.opts
        name = o.metric if isinstance(o.metric, str) else getattr(o.metric, "__name__", "callable")
        extra = f", beta={o.beta}" if name == "fbeta" else ""
        extra += f", gmean_sqrt={o.gmean_sqrt}" if name == "gmean" else ""
        return f"metric={name!r}{extra}, L={o.L}, input_type={o.input_type!r}"


class FBetaAnyLoss(AnyLoss):
    """AnyLoss for F-beta, ``1 - (1+β²)TP / (β² n1 + S)`` (β = 1: F1). Other arguments: :class:`AnyLoss`."""

    def __init__(self, beta: float = 1.0, **kwargs: object) -> None:
        super().__init__("fbeta", beta=beta, **kwargs)  # type: ignore[arg-type]


class AccuracyAnyLoss(AnyLoss):
    """AnyLoss for accuracy, ``1 - (TP + TN)/N``. Arguments: :class:`AnyLoss`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("accuracy", **kwargs)  # type: ignore[arg-type]


class GMeanAnyLoss(AnyLoss):
    """AnyLoss for the G-mean, ``1 - sqrt(TPR·TNR)`` (``sqrt=False``: the extension's ``1 - TPR·TNR``)."""

    def __init__(self, sqrt: bool = True, **kwargs: object) -> None:
        super().__init__("gmean", gmean_sqrt=sqrt, **kwargs)  # type: ignore[arg-type]


class BalancedAccuracyAnyLoss(AnyLoss):
    """AnyLoss for balanced accuracy, ``1 - (TPR + TNR)/2``. Arguments: :class:`AnyLoss`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("balanced_accuracy", **kwargs)  # type: ignore[arg-type]
