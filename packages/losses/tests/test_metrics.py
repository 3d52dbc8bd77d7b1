"""The leaderboard metrics against per-class loops."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.losses import classification_metrics, g_mean


def test_metrics_match_per_class_loops() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 4, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (200,), generator=g)
    m = classification_metrics(logits, target)
    pred = logits.argmax(1)
    recalls, f1s = [], []
    for k in range(4):
        tp = int(((pred == k) & (target == k)).sum())
        recall = tp / int((target == k).sum())
        precision = tp / max(int((pred == k).sum()), 1)
        recalls.append(recall)
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    assert m["top1"] == pytest.approx(float((pred == target).double().mean()), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(sum(f1s) / 4, abs=1e-6)
    assert m["gmean"] == pytest.approx(math.prod(recalls) ** 0.25, abs=1e-6)
    assert 0.0 <= m["ece"] <= 1.0


def test_g_mean_is_zero_when_a_class_is_never_recalled() -> None:
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert g_mean(logits, torch.tensor([0, 1, 0])) == 0.0


def test_ece_of_a_confident_correct_model_is_small() -> None:
    target = torch.arange(3).repeat(10)
    logits = 50.0 * torch.nn.functional.one_hot(target, 3).double()
    assert classification_metrics(logits, target)["ece"] < 1e-6
