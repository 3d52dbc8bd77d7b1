"""The pair-based baselines the reproduction races the MS loss against: contrastive and triplet.

Both work on the Euclidean distances of L2-normalised embeddings,
``d_ik = sqrt(max(2 - 2 <f_i, f_k>, 1e-12))``, over every in-batch pair (contrastive) or triplet
(triplet) with the candidate masks of :func:`~paperzoo.metric_losses.pair_masks` (self pairs
excluded), and average over the terms that are not zero, as pytorch-metric-learning's
``AvgNonZeroReducer`` does (its default for both losses). That average has no per-example form,
so these functions take no ``reduction`` and return a scalar; they are baselines of the
reproduction, not part of either paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_labels, check_positive

from .multi_similarity import pair_masks

__all__ = ["contrastive_loss", "triplet_loss"]


def _distances(embeddings: Tensor) -> Tensor:
    f = F.normalize(embeddings, dim=1)
    return (2.0 - 2.0 * (f @ f.T)).clamp_min(1e-12).sqrt()


def _check(embeddings: Tensor, labels: Tensor) -> None:
    check_float_tensor("embeddings", embeddings, ndim=2, nonempty=True)
    check_labels("labels", labels, n=embeddings.shape[0], validate=False)


def contrastive_loss(
    embeddings: Tensor, labels: Tensor, pos_margin: float = 0.0, neg_margin: float = 0.5
) -> Tensor:
    """Contrastive loss (Hadsell et al., 2006) averaged over its non-zero pair terms.

    Terms ``max(0, d_ik - pos_margin)`` on positive pairs and ``max(0, neg_margin - d_ik)`` on
    negative pairs (ordered pairs, so each unordered pair counts twice, as in
    pytorch-metric-learning). ``embeddings`` (B, D), ``labels`` (B,) -> scalar (0 when every
    term is 0).
    """
    _check(embeddings, labels)
    check_positive("pos_margin", pos_margin, allow_zero=True)
    check_positive("neg_margin", neg_margin, allow_zero=True)
    d = _distances(embeddings)
    pos, neg = pair_masks(labels)
    terms = torch.cat([(d - pos_margin).relu()[pos], (neg_margin - d).relu()[neg]])
    return terms.sum() / (terms > 0).sum().clamp_min(1)


def triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.1) -> Tensor:
    """Triplet margin loss over every in-batch triplet, averaged over its non-zero terms.

    Terms ``max(0, d_ap - d_an + margin)`` for every anchor a, positive p (same label, p != a)
    and negative n (other label). ``embeddings`` (B, D), ``labels`` (B,) -> scalar. Builds a
    (B, B, B) tensor: meant for the small batches of the reproduction.
    """
    _check(embeddings, labels)
    check_positive("margin", margin, allow_zero=True)
    d = _distances(embeddings)
    pos, neg = pair_masks(labels)
    t = (d.unsqueeze(2) - d.unsqueeze(1) + margin).relu()  # (a, p, n)
    t = t * (pos.unsqueeze(2) & neg.unsqueeze(1))
    return t.sum() / (t > 0).sum().clamp_min(1)
