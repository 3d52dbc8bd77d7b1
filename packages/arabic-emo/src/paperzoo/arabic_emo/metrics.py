"""Multi-label metrics of the official SemEval-2018 Task 1 E-c scorer, plus the per-label table.

The official scorer (``felipebravom/SemEval_2018_Task_1_Eval``, ``utils.py``, ``evaluate_multilabel``)
computes Jaccard accuracy with the old scikit-learn ``jaccard_similarity_score``: sample-wise
``|G ∩ P| / |G ∪ P|`` with an empty union counting **1** (today's ``jaccard_score(average="samples")``
gives 0 there unless ``zero_division=1``), and micro/macro F1 with ``f1_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from paperzoo.arabic_emo.stats import check_binary_labels
from paperzoo.core.checks import check_unit_interval

__all__ = ["multilabel_metrics"]


def _as_tensor(name: str, x: object) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _ratio(num: Tensor, den: Tensor, zero_division: float) -> Tensor:
    return torch.where(den > 0, num / den.clamp_min(1.0), torch.full_like(num, zero_division))


def multilabel_metrics(
    y_true: Tensor | np.ndarray[Any, Any],
    y_pred: Tensor | np.ndarray[Any, Any],
    *,
    zero_division: float = 0.0,
    validate: bool = True,
) -> dict[str, Any]:
    """Jaccard accuracy, hamming loss, micro/macro precision-recall-F1 and the per-label table.

    - ``jaccard``: mean over examples of ``|G_n ∩ P_n| / |G_n ∪ P_n|``, an empty union counting
      1 (the official scorer; equals ``sklearn.metrics.jaccard_score(average="samples",
      zero_division=1)``). Not a bit-level accuracy.
    - ``hamming``: mean over the ``N * K`` bits of ``[y != y_hat]``.
    - ``micro_p/r/f1``: from the pooled TP, FP, FN over all labels.
    - ``macro_p/r/f1``: unweighted means of the per-label values; a ratio whose denominator is 0
      counts ``zero_division`` (0, scikit-learn's default value, without its warning).
    - ``per_label``: ``{"precision", "recall", "f1", "support"}``, lists of K values.

    Everything is one vectorised pass over the ``N * K`` bits, in float64.

    Args:
        y_true: ``(N, K)`` 0/1 gold labels (tensor or NumPy array, any real or bool dtype).
        y_pred: ``(N, K)`` 0/1 predictions (threshold probabilities first, e.g. ``p >= 0.5``).
        zero_division: value of an undefined precision/recall/F1 (in ``[0, 1]``).
        validate: check both hold only 0/1 (host syncs).

    Returns:
        A dict of Python floats (``jaccard``, ``hamming``, ``micro_p``, ``micro_r``, ``micro_f1``,
        ``macro_p``, ``macro_r``, ``macro_f1``) and ``per_label``.

    Raises:
        TypeError: not a tensor/array. ValueError: not ``(N, K)``, shapes differ, no rows, values
            other than 0/1, ``zero_division`` outside ``[0, 1]``.
    """
    zd = check_unit_interval("zero_division", zero_division)
    t = _as_tensor("y_true", y_true)
    p = _as_tensor("y_pred", y_pred)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    if p.dtype == torch.bool:
        p = p.to(torch.uint8)
    check_binary_labels("y_true", t, validate=validate)
    check_binary_labels("y_pred", p, validate=validate)
    if t.shape != p.shape:
        raise ValueError(
            f"y_true, y_pred: expected the same shape, got {tuple(t.shape)} and {tuple(p.shape)}"
        )
    if t.shape[0] == 0:
        raise ValueError(f"y_true: expected at least one row, got shape {tuple(t.shape)}")
    tb = t.to(p.device) != 0
    pb = p != 0
    tp_bits = tb & pb
    inter = tp_bits.sum(dim=1, dtype=torch.float64)
    union = (tb | pb).sum(dim=1, dtype=torch.float64)
    jaccard = _ratio(inter, union, 1.0).mean()
    hamming = (tb != pb).to(torch.float64).mean()
    tp = tp_bits.sum(dim=0, dtype=torch.float64)
    pred_pos = pb.sum(dim=0, dtype=torch.float64)
    true_pos = tb.sum(dim=0, dtype=torch.float64)
    fp, fn = pred_pos - tp, true_pos - tp
    precision = _ratio(tp, pred_pos, zd)
    recall = _ratio(tp, true_pos, zd)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, zd)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    micro_p = _ratio(TP, TP + FP, zd)
    micro_r = _ratio(TP, TP + FN, zd)
    micro_f1 = _ratio(2 * TP, 2 * TP + FP + FN, zd)
    stacked = torch.stack(
        [jaccard, hamming, micro_p, micro_r, micro_f1, precision.mean(), recall.mean(), f1.mean()]
    ).tolist()
    keys = (
        "jaccard",
        "hamming",
        "micro_p",
        "micro_r",
        "micro_f1",
        "macro_p",
        "macro_r",
        "macro_f1",
    )
    out: dict[str, Any] = dict(zip(keys, stacked, strict=True))
    out["per_label"] = {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(v) for v in true_pos.tolist()],
    }
    return out
