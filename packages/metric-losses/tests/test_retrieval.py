"""Recall@k against torchmetrics' RetrievalHitRate, MAP@R against a plain loop and hand values."""

from __future__ import annotations

import pytest
import torch

from paperzoo.metric_losses import map_at_r, recall_at_k, retrieval_metrics


def _data(seed: int = 0, n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    e = torch.randn(4, 6, generator=g)[y] + 1.2 * torch.randn(n, 6, generator=g)
    return e, y


@pytest.mark.parametrize("k", [1, 3, 10])
def test_recall_at_k_equals_torchmetrics_hit_rate(k: int) -> None:
    from torchmetrics.retrieval import RetrievalHitRate

    e, y = _data()
    n = len(y)
    f = torch.nn.functional.normalize(e, dim=1)
    s = f @ f.T
    off = ~torch.eye(n, dtype=torch.bool)
    preds = s[off].view(n, n - 1)
    target = (y[:, None] == y[None])[off].view(n, n - 1)
    idx = torch.arange(n)[:, None].expand(n, n - 1)
    ref = RetrievalHitRate(top_k=k)(preds.flatten(), target.flatten(), indexes=idx.flatten())
    assert recall_at_k(e, y, ks=(k,))[k] == pytest.approx(float(ref), abs=1e-6)


def test_map_at_r_equals_a_plain_loop() -> None:
    e, y = _data(1)
    f = torch.nn.functional.normalize(e, dim=1)
    s = f @ f.T
    total = 0.0
    for i in range(len(y)):
        order = [j for j in torch.argsort(s[i], descending=True).tolist() if j != i]
        R = int((y == y[i]).sum()) - 1
        hits, ap = 0, 0.0
        for rank, j in enumerate(order[:R], start=1):
            if y[j] == y[i]:
                hits += 1
                ap += hits / rank
        total += ap / R
    assert map_at_r(e, y) == pytest.approx(total / len(y), abs=1e-6)


def test_perfect_and_hand_made_rankings() -> None:
    e = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y = torch.tensor([0, 0, 1, 1])
    assert retrieval_metrics(e, y, ks=(1,)) == {"recall@1": 1.0, "map@r": 1.0}
    y2 = torch.tensor([0, 1, 0, 1])  # nearest neighbour always of the other class
    assert recall_at_k(e, y2, ks=(1, 2))[1] == 0.0
    assert map_at_r(e, y2) == 0.0


def test_gallery_mode_and_bad_input() -> None:
    e, y = _data(2)
    r = recall_at_k(e[:10], y[:10], ks=(1,), gallery=e[10:], gallery_labels=y[10:])
    assert 0.0 <= r[1] <= 1.0
    with pytest.raises(ValueError, match="ks"):
        recall_at_k(e, y, ks=(0,))
    with pytest.raises(ValueError, match="gallery"):
        recall_at_k(e, y, gallery=e)


def test_recall_at_k_rejects_empty_or_non_integer_ks() -> None:
    e, y = _data()
    with pytest.raises(TypeError, match="ks: expected a non-empty sequence of ints"):
        recall_at_k(e, y, ks=())
    with pytest.raises(TypeError, match="ks: expected a non-empty sequence of ints"):
        recall_at_k(e, y, ks=(1.5,))  # type: ignore[arg-type]
