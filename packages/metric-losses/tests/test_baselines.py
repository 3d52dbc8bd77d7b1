"""The reproduction's contrastive and triplet baselines against plain per-pair / per-triplet loops
(float64), and their bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses.baselines import contrastive_loss, triplet_loss

F64 = torch.float64


def _batch(seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(4).repeat_interleave(3)
    e = torch.randn(4, 6, generator=g, dtype=F64)[y] + 0.8 * torch.randn(
        12, 6, generator=g, dtype=F64
    )
    return e, y


def _dist(e: Tensor, i: int, k: int) -> float:
    fi, fk = e[i] / e[i].norm(), e[k] / e[k].norm()
    return math.sqrt(max(2.0 - 2.0 * float(fi @ fk), 1e-12))


def _mean_nonzero(terms: list[float]) -> float:
    nonzero = [t for t in terms if t > 0]
    return sum(nonzero) / max(len(nonzero), 1)


@pytest.mark.parametrize("seed", range(3))
def test_contrastive_loss_equals_a_loop_over_ordered_pairs(seed: int) -> None:
    e, y = _batch(seed)
    n = len(y)
    terms = []
    for i in range(n):
        for k in range(n):
            if i == k:
                continue
            d = _dist(e, i, k)
            terms.append(max(0.0, d - 0.1) if y[i] == y[k] else max(0.0, 0.7 - d))
    got = contrastive_loss(e, y, pos_margin=0.1, neg_margin=0.7)
    assert float(got) == pytest.approx(_mean_nonzero(terms), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_triplet_loss_equals_a_loop_over_triplets(seed: int) -> None:
    e, y = _batch(seed)
    n = len(y)
    terms = [
        max(0.0, _dist(e, a, p) - _dist(e, a, q) + 0.3)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if p != a and y[p] == y[a] and y[q] != y[a]
    ]
    assert float(triplet_loss(e, y, margin=0.3)) == pytest.approx(_mean_nonzero(terms), abs=1e-12)


def test_baselines_are_zero_when_every_term_is_zero() -> None:
    e = torch.eye(4, dtype=F64)  # orthonormal: negatives at distance sqrt(2) > margins
    y = torch.arange(4)
    assert float(contrastive_loss(e, y)) == 0.0
    assert float(triplet_loss(e, y)) == 0.0  # no positive pair, no triplet


def test_baselines_reject_bad_input_naming_the_argument() -> None:
    e, y = _batch(0)
    with pytest.raises(ValueError, match="neg_margin: expected a finite value >= 0"):
        contrastive_loss(e, y, neg_margin=-1.0)
    with pytest.raises(ValueError, match="margin: expected a finite value >= 0"):
        triplet_loss(e, y, margin=-0.1)
    with pytest.raises(ValueError, match="labels: expected 12 labels"):
        triplet_loss(e, y[:5])
    with pytest.raises(TypeError, match="embeddings: expected a floating-point tensor"):
        contrastive_loss(e.long(), y)
