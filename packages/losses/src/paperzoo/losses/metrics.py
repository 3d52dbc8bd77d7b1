"""The leaderboard's metrics, from torchmetrics: top-1, macro-F1, G-mean and calibration error."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_f1_score,
    multiclass_recall,
)

from paperzoo.core.checks import check_float_tensor, check_labels

__all__ = ["METRICS", "classification_metrics", "g_mean"]

#: the metric names of :func:`classification_metrics`
METRICS: tuple[str, ...] = ("top1", "macro_f1", "gmean", "ece")


def g_mean(logits: Tensor, target: Tensor) -> float:
    """Geometric mean of the per-class recalls (0 as soon as one class is never recalled).

    ``logits`` ``(N, K)``, ``target`` ``(N,)``; classes absent from ``target`` are left out.
    """
    k = logits.shape[1]
    rec = multiclass_recall(logits, target, num_classes=k, average="none")
    present = torch.bincount(target, minlength=k) > 0
    r = rec[present].double()
    return float(r.prod() ** (1.0 / max(int(present.sum()), 1)))


def classification_metrics(logits: Tensor, target: Tensor, *, n_bins: int = 15) -> dict[str, float]:
    """``{"top1", "macro_f1", "gmean", "ece"}`` of ``(N, K)`` logits against ``(N,)`` labels.

    ``ece`` is torchmetrics' ``MulticlassCalibrationError`` (L1, ``n_bins`` equal-width bins of the
    top-class confidence of ``softmax(logits)``).
    """
    check_float_tensor("logits", logits, ndim=2, nonempty=True)
    k = logits.shape[1]
    check_labels("target", target, n=logits.shape[0], num_classes=k, like=logits)
    return {
        "top1": float(multiclass_accuracy(logits, target, num_classes=k, average="micro")),
        "macro_f1": float(multiclass_f1_score(logits, target, num_classes=k, average="macro")),
        "gmean": g_mean(logits, target),
        "ece": float(
            multiclass_calibration_error(logits.softmax(1), target, num_classes=k, n_bins=n_bins)
        ),
    }
