"""The utilization metric of Metrix: how close query embeddings fall to training embeddings.

    u(Q; X) = (1 / |Q|) sum_{q in Q} min_{x in X} || f(q) - f(x) ||_2     (L2-normalised embeddings)

Lower = the queries lie in regions the training set explored. Computed in query chunks with the
matmul form ``|q|^2 + |x|^2 - 2 q.x`` (squared distances clamped at 0, so ``u(X; X) = 0`` up to
rounding: ~1e-8 in float64, up to ~1e-3 in float32). ``squared=True`` averages squared distances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_finite, check_float_tensor, check_positive_int

__all__ = ["utilization"]


@torch.no_grad()
def utilization(
    query_emb: Tensor,
    train_emb: Tensor,
    squared: bool = False,
    chunk: int = 4096,
    validate: bool = True,
) -> Tensor:
    """Mean over queries of the distance to the nearest training embedding (scalar tensor).

    Args:
        query_emb: (Q, D) query (test) embeddings; L2-normalised inside.
        train_emb: (N, D) training embeddings (optionally with mixed ones); normalised inside.
        squared: average squared distances instead (the paper's exact form is unverified).
        chunk: queries per block (memory chunk * N).
        validate: check finiteness (a device sync).

    Raises:
        TypeError: non-float inputs. ValueError: empty sets, dimension mismatch, non-finite values.
    """
    check_float_tensor("query_emb", query_emb, ndim=2, nonempty=True)
    check_float_tensor("train_emb", train_emb, ndim=2, nonempty=True)
    if query_emb.shape[1] != train_emb.shape[1]:
        raise ValueError(
            f"train_emb: expected dimension {query_emb.shape[1]} (like query_emb), got {train_emb.shape[1]}"
        )
    check_positive_int("chunk", chunk)
    check_finite("query_emb", query_emb, validate=validate)
    check_finite("train_emb", train_emb, validate=validate)
    q = F.normalize(query_emb, dim=1)
    x = F.normalize(train_emb.to(q.dtype), dim=1)
    x_sq = (x * x).sum(1)
    total = q.new_zeros(())
    for start in range(0, q.shape[0], chunk):
        qb = q[start : start + chunk]
        d2 = ((qb * qb).sum(1, keepdim=True) + x_sq[None, :] - 2.0 * qb @ x.T).clamp_(min=0)
        best = d2.min(1).values
        total = total + (best if squared else best.sqrt()).sum()
    return total / q.shape[0]
