"""Anti-spoofing metrics against scikit-learn and hand counts."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from paperzoo.hyp_oc import apcer_bpcer_acer, eer, hter, roc_auc


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(300, generator=g) < 0.4).long()
    s = torch.randn(300, generator=g, dtype=torch.float64) + y * 1.2
    return (s * 4).round() / 4, y  # ties on purpose


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_equals_scikit_learn_with_ties(seed: int) -> None:
    s, y = _data(seed)
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y.numpy(), s.numpy()), abs=1e-12)


def test_apcer_bpcer_acer_count_by_hand() -> None:
    s = torch.tensor([0.1, 0.4, 0.6, 0.2, 0.7, 0.9])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    apcer, bpcer, acer = apcer_bpcer_acer(s, y, 0.5)
    assert (apcer, bpcer) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert acer == pytest.approx(1 / 3) and hter(s, y, 0.5) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_eer_is_where_the_roc_error_rates_cross(seed: int) -> None:
    s, y = _data(seed)
    e, thr = eer(s, y)
    fpr, tpr, _ = roc_curve(y.numpy(), s.numpy())
    fnr = 1 - tpr
    i = abs(fnr - fpr).argmin()
    # the sklearn crossing uses >= thresholds, ours > thr: both straddle the same crossing
    assert e == pytest.approx((fpr[i] + fnr[i]) / 2, abs=0.03)
    a, b, _ = apcer_bpcer_acer(s, y, thr)
    assert e == pytest.approx((a + b) / 2)


def test_metrics_reject_bad_labels_and_one_class() -> None:
    s = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match="labels"):
        roc_auc(s, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="both"):
        roc_auc(s, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="labels"):
        eer(s, torch.tensor([0, 1, 1]))
