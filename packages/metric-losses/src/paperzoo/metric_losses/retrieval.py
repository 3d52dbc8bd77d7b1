"""Retrieval metrics for embeddings: Recall@k and MAP@R, leave-one-out over a labelled set.

Every point is a query against all other points (or against a separate gallery). Recall@k is 1
for a query when at least one of its k nearest neighbours shares its label (the metric-learning
"Recall@k" of the MS paper, which torchmetrics calls ``RetrievalHitRate``); MAP@R (Musgrave et
al., 2020) is the mean over queries of ``(1/R) sum_{i<=R} P@i * rel_i`` with R the number of
relevant gallery items.

These are computed here in one vectorised pass: torchmetrics' retrieval metrics group the
(query, item) pairs with a Python loop over queries (about 3 s for 900 queries on 2 CPU cores
against 20 ms here) and it has no MAP@R. The tests check Recall@k against
``torchmetrics.retrieval.RetrievalHitRate`` and MAP@R against a plain loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from paperzoo.core.checks import check_finite, check_float_tensor, check_labels

from .multi_similarity import Similarity, similarity_matrix

__all__ = ["map_at_r", "recall_at_k", "retrieval_metrics"]


def _scores(embeddings: Tensor, gallery: Tensor | None, similarity: Similarity) -> Tensor:
    """Query-vs-gallery similarities (N, M); leave-one-out (-inf diagonal) without a gallery."""
    s = similarity_matrix(embeddings, gallery, similarity)
    if gallery is None:
        s = s.fill_diagonal_(float("-inf"))
    return s


def _check(
    embeddings: Tensor,
    labels: Tensor,
    gallery: Tensor | None,
    gallery_labels: Tensor | None,
) -> Tensor:
    for name, x in (("embeddings", embeddings), ("gallery", gallery)):
        if x is not None:
            check_float_tensor(name, x, ndim=2, nonempty=True)
            check_finite(name, x)
    check_labels("labels", labels, n=embeddings.shape[0])
    if (gallery is None) != (gallery_labels is None):
        raise ValueError(
            "gallery, gallery_labels: expected both or neither, got "
            f"gallery={'a tensor' if gallery is not None else None}, "
            f"gallery_labels={'a tensor' if gallery_labels is not None else None}"
        )
    if gallery is not None and gallery_labels is not None:
        check_labels("gallery_labels", gallery_labels, n=gallery.shape[0])
        if gallery.shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"gallery: expected dimension {embeddings.shape[1]} (like embeddings), got "
                f"{gallery.shape[1]}"
            )
        return gallery_labels
    if embeddings.shape[0] < 2:
        raise ValueError(
            "embeddings: expected at least 2 rows for leave-one-out retrieval, got "
            f"{embeddings.shape[0]}"
        )
    return labels


@torch.no_grad()
def recall_at_k(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1,),
    gallery: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    similarity: Similarity = "cosine",
) -> dict[int, float]:
    """Recall@k for each k in ``ks``: fraction of queries with a same-label item among the top k.

    ``embeddings`` (N, D) and ``labels`` (N,) are the queries; without a gallery each query is
    searched among the other N-1 points. Returns ``{k: recall}``.
    """
    g_labels = _check(embeddings, labels, gallery, gallery_labels)
    ks = list(ks)
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) for k in ks):
        raise TypeError(f"ks: expected a non-empty sequence of ints, got {ks!r}")
    s = _scores(embeddings, gallery, similarity)
    k_max = max(ks)
    size = s.shape[1] - (1 if gallery is None else 0)
    if any(k < 1 for k in ks) or k_max > size:
        raise ValueError(f"ks: expected values in [1, {size}] (the gallery size), got {ks}")
    idx = s.topk(k_max, dim=1).indices
    hit = g_labels[idx] == labels.unsqueeze(1)  # (N, k_max)
    first = torch.cumsum(hit.int(), dim=1) > 0
    return {k: float(first[:, k - 1].float().mean()) for k in ks}


@torch.no_grad()
def map_at_r(
    embeddings: Tensor,
    labels: Tensor,
    gallery: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    similarity: Similarity = "cosine",
) -> float:
    """MAP@R: mean over queries of ``(1/R) sum_{i<=R} P@i * rel_i`` (queries with R = 0 skipped).

    ``embeddings`` (N, D), ``labels`` (N,); optional ``gallery`` (M, D) with ``gallery_labels``
    (M,), otherwise leave-one-out among the N points. Returns a float (0.0 if no query has a
    relevant item).
    """
    g_labels = _check(embeddings, labels, gallery, gallery_labels)
    s = _scores(embeddings, gallery, similarity)
    relevant = labels.unsqueeze(1) == g_labels.unsqueeze(0)
    if gallery is None:
        relevant.fill_diagonal_(False)
    R = relevant.sum(dim=1)
    r_max = int(R.max())
    if r_max == 0:
        return 0.0
    idx = s.topk(r_max, dim=1).indices
    rel = relevant.gather(1, idx).to(s.dtype)  # (N, r_max), ranked
    ranks = torch.arange(1, r_max + 1, device=s.device, dtype=s.dtype)
    precision = torch.cumsum(rel, dim=1) / ranks
    within = ranks.unsqueeze(0) <= R.unsqueeze(1)
    ap = (precision * rel * within).sum(dim=1) / R.clamp_min(1).to(s.dtype)
    has = R > 0
    return float(ap[has].mean())


def retrieval_metrics(
    embeddings: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 4),
    similarity: Similarity = "cosine",
) -> dict[str, float]:
    """``{"recall@k": ..., "map@r": ...}`` for ``embeddings`` (N, D) and ``labels`` (N,),
    leave-one-out (see :func:`recall_at_k` and :func:`map_at_r`)."""
    out = {
        f"recall@{k}": v
        for k, v in recall_at_k(embeddings, labels, ks, similarity=similarity).items()
    }
    out["map@r"] = map_at_r(embeddings, labels, similarity=similarity)
    return out
