r"""The soft confusion matrix and the confusion-matrix metrics AnyLoss turns into losses.

For a batch of ``N`` examples with labels :math:`y_i \in \{0, 1\}` and (soft) predictions
:math:`\hat y_i \in [0, 1]`, the paper's Eq. 3 is

.. math::

    TP = \sum_i y_i \hat y_i,\quad FN = n_1 - TP,\quad FP = S - TP,\quad TN = N - n_1 - S + TP,

with :math:`n_1 = \sum_i y_i` and :math:`S = \sum_i \hat y_i` (the same as
:math:`\sum (1 - y)(1 - \hat y)` etc.; the four cells sum to ``N``). The built-in metrics use the
official code's closed forms in :math:`(TP, S, n_1, N)`; :data:`METRICS` is their registry (the
tests and the reproduction enumerate it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import torch
from torch import Tensor

__all__ = [
    "METRICS",
    "Confusion",
    "MetricName",
    "confusion_metrics",
    "soft_confusion",
]

MetricName = Literal["f1", "fbeta", "accuracy", "gmean", "balanced_accuracy"]
"""The built-in metrics: F1, F-beta, accuracy, G-mean and balanced accuracy."""


@dataclass(frozen=True)
class Confusion:
    """A (soft) confusion matrix over the batch dimension.

    Every field has the shape of one example's prediction without the batch axis: ``()`` for a
    binary batch ``(N,)``, ``(K,)`` for one-vs-rest over ``K`` classes ``(N, K)``.

    Attributes:
        tn, fp, fn, tp: the four cells (sums of soft or hard predictions).
        n: the batch size ``N`` (a tensor of the predictions' dtype).
        n_pos, n_neg: the numbers of positive and negative labels, ``n_pos + n_neg = n``.
    """

    tn: Tensor
    fp: Tensor
    fn: Tensor
    tp: Tensor
    n: Tensor
    n_pos: Tensor
    n_neg: Tensor


@dataclass(frozen=True)
class _Sums:
    """The three batch sums every closed form needs (one pass each), and ``N``."""

    tp: Tensor  # sum y * y_hat
    s: Tensor  # sum y_hat (predicted positives)
    n_pos: Tensor  # sum y
    n: Tensor  # batch size, as a tensor


def _sums(y_hat: Tensor, y: Tensor) -> _Sums:
    """``y_hat``, ``y``: ``(N,)`` or ``(N, K)`` of one float dtype; sums over dim 0."""
    n = torch.full((), y_hat.shape[0], dtype=y_hat.dtype, device=y_hat.device)
    return _Sums(tp=(y * y_hat).sum(0), s=y_hat.sum(0), n_pos=y.sum(0), n=n)


def _confusion_from_sums(t: _Sums) -> Confusion:
    fp = t.s - t.tp
    fn = t.n_pos - t.tp
    tn = t.n - t.n_pos - t.s + t.tp
    return Confusion(tn=tn, fp=fp, fn=fn, tp=t.tp, n=t.n, n_pos=t.n_pos, n_neg=t.n - t.n_pos)


def soft_confusion(y_hat: Tensor, target: Tensor) -> Confusion:
    """The soft confusion matrix of predictions ``y_hat`` against 0/1 labels ``target`` (Eq. 3).

    With hard ``y_hat`` in ``{0, 1}`` it is the ordinary confusion matrix
    (``sklearn.metrics.confusion_matrix(target, y_hat).ravel() == (tn, fp, fn, tp)``).

    Args:
        y_hat: ``(N,)`` (binary) or ``(N, K)`` (one column per one-vs-rest class) floats in
            ``[0, 1]``, typically :func:`~paperzoo.anyloss.approximation` of probabilities.
        target: labels ``{0, 1}`` of the same shape (float, integer or bool).

    Returns:
        A :class:`Confusion` whose fields have shape ``()`` or ``(K,)``.

    Raises:
        TypeError: ``y_hat`` not a floating-point tensor, ``target`` not a tensor.
        ValueError: different shapes, or an empty batch.
    """
    if not isinstance(y_hat, Tensor) or not y_hat.is_floating_point():
        raise TypeError(f"y_hat: expected a floating-point tensor, got {_describe(y_hat)}")
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.shape != y_hat.shape:
        raise ValueError(
            f"target: expected the shape of y_hat {tuple(y_hat.shape)}, got {tuple(target.shape)}"
        )
    if y_hat.dim() == 0 or y_hat.shape[0] == 0:
        raise ValueError(f"y_hat: expected a non-empty batch, got shape {tuple(y_hat.shape)}")
    return _confusion_from_sums(_sums(y_hat, target.to(y_hat.dtype)))


def _describe(x: object) -> str:
    return f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


# ----------------------------------------------------------------------------- closed forms

_ClosedForm = Callable[[_Sums, float, bool, float], Tensor]


def _accuracy(t: _Sums, beta: float, sqrt: bool, eps: float) -> Tensor:
    """(TP + TN) / N = (N - n1 - S + 2 TP) / N."""
    return (t.n - t.n_pos - t.s + 2 * t.tp) / t.n


def _fbeta(t: _Sums, beta: float, sqrt: bool, eps: float) -> Tensor:
    """(1 + β²) TP / ((1 + β²) TP + β² FN + FP) = (1 + β²) TP / (β² n1 + S)."""
    b2 = beta * beta
    return (1 + b2) * t.tp / (b2 * t.n_pos + t.s).clamp_min(eps)


def _gmean(t: _Sums, beta: float, sqrt: bool, eps: float) -> Tensor:
    """sqrt(TPR · TNR) = sqrt(TP · TN / (n1 n0)); without ``sqrt`` the extension's TP·TN/(n1 n0)."""
    tn = t.n - t.n_pos - t.s + t.tp
    x = t.tp * tn / (t.n_pos * (t.n - t.n_pos)).clamp_min(eps)
    if not sqrt:
        return x
    # exact value everywhere; below eps the derivative of sqrt (infinite at 0) is replaced by 0
    return torch.where(x >= eps, x.clamp_min(eps).sqrt(), x.detach().clamp_min(0).sqrt())


def _balanced_accuracy(t: _Sums, beta: float, sqrt: bool, eps: float) -> Tensor:
    """(TPR + TNR) / 2 = (n0 TP + n1 TN) / (2 n1 n0)."""
    n_neg = t.n - t.n_pos
    tn = t.n - t.n_pos - t.s + t.tp
    return (n_neg * t.tp + t.n_pos * tn) / (2 * t.n_pos * n_neg).clamp_min(eps)


METRICS: Final[dict[str, _ClosedForm]] = {
    "accuracy": _accuracy,
    "f1": _fbeta,  # beta fixed to 1 by the caller
    "fbeta": _fbeta,
    "gmean": _gmean,
    "balanced_accuracy": _balanced_accuracy,
}
"""Registry of the built-in metrics: ``name -> closed_form(sums, beta, gmean_sqrt, eps)``.

The closed forms are the official code's (``Ours_Accu``, ``Ours_Fbeta``, ``Ours_Gmean``,
``Ours_BAccu``): ``eps`` clamps only denominators that can vanish (F-beta when ``n1 = S = 0``;
G-mean and balanced accuracy when the batch holds one class only).
"""

#: metrics that are undefined when the batch holds only one class
NEEDS_BOTH_CLASSES: Final[frozenset[str]] = frozenset({"gmean", "balanced_accuracy"})


# ----------------------------------------------------------------------------- evaluation


def confusion_metrics(probs: Tensor, target: Tensor, threshold: float = 0.5) -> dict[str, float]:
    """Hard-prediction metrics at ``threshold`` (predict 1 when ``probs > threshold``, as the
    official code), for evaluation.

    Args:
        probs: ``(N,)`` or ``(N, 1)`` probabilities (any real scores work with a matching
            ``threshold``).
        target: ``(N,)`` or ``(N, 1)`` labels in ``{0, 1}``.
        threshold: decision threshold, default 0.5.

    Returns:
        ``tn, fp, fn, tp`` (counts), ``accuracy``, ``precision``, ``recall``, ``specificity``,
        ``f1``, ``gmean`` (``sqrt(recall * specificity)``), ``balanced_accuracy``, and ``constant``
        (1.0 when every prediction is the same class: a collapsed classifier, else 0.0). A ratio
        whose denominator is 0 is 0, as scikit-learn's ``zero_division`` default.

    Raises:
        TypeError / ValueError: non-tensor input, mismatched sizes, an empty batch, labels outside
            ``{0, 1}``.
    """
    if not isinstance(probs, Tensor) or not isinstance(target, Tensor):
        raise TypeError("probs, target: expected torch.Tensors")
    p = probs.detach().reshape(-1).double().cpu()
    y = target.detach().reshape(-1).double().cpu()
    if p.shape != y.shape:
        raise ValueError(
            f"probs, target: expected the same number of elements, got {tuple(probs.shape)} and "
            f"{tuple(target.shape)}"
        )
    if p.numel() == 0:
        raise ValueError("probs: expected a non-empty batch, got 0 elements")
    if bool(((y != 0) & (y != 1)).any()):
        raise ValueError("target: expected labels in {0, 1}")
    pred = (p > threshold).double()
    c = _confusion_from_sums(_sums(pred, y))
    tn, fp, fn, tp = (float(v) for v in (c.tn, c.fp, c.fn, c.tp))

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else 0.0

    recall, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    return {
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": recall,
        "specificity": spec,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "gmean": (recall * spec) ** 0.5,
        "balanced_accuracy": (recall + spec) / 2,
        "constant": float(tp + fp == 0 or tn + fn == 0),
    }
