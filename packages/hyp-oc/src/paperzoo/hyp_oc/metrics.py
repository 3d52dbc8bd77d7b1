"""Face anti-spoofing metrics (ISO/IEC 30107-3 names); spoof = positive class 1, bona fide = 0.

A sample is *classified as an attack* when its spoof score is ``> thr``. APCER: the share of
attacks classified as bona fide; BPCER (the paper's NPCER): the share of bona-fide samples
classified as attacks; ACER = HTER = their mean at one threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import as_real, check_finite, check_float_tensor, check_labels

__all__ = ["apcer_bpcer_acer", "eer", "hter", "roc_auc"]


def _inputs(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    check_float_tensor("scores", scores, 1, nonempty=True)
    check_finite("scores", scores)
    check_labels("labels", labels, n=scores.shape[0], num_classes=2, like=scores)
    pos = labels == 1
    if not bool(pos.any()) or bool(pos.all()):
        raise ValueError("labels: expected both bona-fide (0) and attack (1) samples")
    return scores.double(), pos


def apcer_bpcer_acer(scores: Tensor, labels: Tensor, thr: float) -> tuple[float, float, float]:
    """``(APCER, BPCER, ACER)`` at threshold ``thr``.

    Args:
        scores: ``(N,)`` spoof scores (higher = more likely an attack).
        labels: ``(N,)`` 0 = bona fide, 1 = attack (both present).
        thr: decision threshold: attack iff ``score > thr``.

    Raises:
        TypeError/ValueError: non-float or non-finite scores, labels outside ``{0, 1}``, a
            missing class, a length mismatch.
    """
    s, pos = _inputs(scores, labels)
    t = as_real("thr", thr)
    apcer = float((s[pos] <= t).double().mean())
    bpcer = float((s[~pos] > t).double().mean())
    return apcer, bpcer, (apcer + bpcer) / 2


def hter(scores: Tensor, labels: Tensor, thr: float) -> float:
    """Half total error rate ``(APCER + BPCER) / 2`` at a threshold fixed beforehand (``(N,)``
    scores and labels; see :func:`apcer_bpcer_acer`)."""
    return apcer_bpcer_acer(scores, labels, thr)[2]


def eer(scores: Tensor, labels: Tensor) -> tuple[float, float]:
    """Equal error rate: ``(EER, threshold)`` where APCER and BPCER cross.

    Every observed score is a candidate threshold; at the one minimising ``|APCER - BPCER|``
    the EER is their mean. Shapes: ``(N,)`` scores and labels.
    """
    s, pos = _inputs(scores, labels)
    cand = torch.unique(s)  # sorted ascending, (T,)
    # counts of scores <= each candidate, per class (searchsorted on the sorted class scores)
    neg_sorted = s[~pos].sort().values
    pos_sorted = s[pos].sort().values
    apcer = torch.searchsorted(pos_sorted, cand, right=True).double() / pos_sorted.numel()
    bpcer = 1 - torch.searchsorted(neg_sorted, cand, right=True).double() / neg_sorted.numel()
    i = int((apcer - bpcer).abs().argmin())
    return float((apcer[i] + bpcer[i]) / 2), float(cand[i])


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``(N,)`` spoof scores (attack = positive), ties counted half
    (the Mann-Whitney statistic, by average ranks)."""
    s, pos = _inputs(scores, labels)
    _, inverse, counts = torch.unique(s, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    avg_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct value
    ranks = avg_rank[inverse]
    n1 = int(pos.sum())
    n0 = s.numel() - n1
    u = float(ranks[pos].sum()) - n1 * (n1 + 1) / 2
    return u / (n0 * n1)
