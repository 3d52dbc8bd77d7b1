"""Slow, obviously-correct references: per-group Python loops for routing decisions and the
official one-hot dispatch/combine einsums (``imp/max/modeling/moe.py`` style) for the layer."""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.imp_moe import MoEFFN


def loop_tokens_choose(probs: Tensor, k: int, cap: int, bpr: bool) -> tuple[Tensor, Tensor]:
    """Dispatch ``(G, T, E, C)`` 0/1 and combine ``(G, T, E, C)`` weights by explicit queueing."""
    g_n, t_n, e_n = probs.shape
    dispatch = torch.zeros(g_n, t_n, e_n, cap, dtype=probs.dtype)
    combine = torch.zeros(g_n, t_n, e_n, cap, dtype=probs.dtype)
    for g in range(g_n):
        ranked = [sorted(range(e_n), key=lambda e: -float(probs[g, t, e]))[:k] for t in range(t_n)]
        order = list(range(t_n))
        if bpr:
            order = sorted(order, key=lambda t: -float(probs[g, t, ranked[t][0]]))
        fill = [0] * e_n
        for j in range(k):
            for t in order:
                e = ranked[t][j]
                if fill[e] < cap:
                    dispatch[g, t, e, fill[e]] = 1.0
                    combine[g, t, e, fill[e]] = probs[g, t, e]
                fill[e] += 1
    return dispatch, combine


def loop_experts_choose(probs: Tensor, cap: int) -> tuple[Tensor, Tensor]:
    """Each expert's top-``cap`` tokens by explicit sorting."""
    g_n, t_n, e_n = probs.shape
    dispatch = torch.zeros(g_n, t_n, e_n, cap, dtype=probs.dtype)
    combine = torch.zeros(g_n, t_n, e_n, cap, dtype=probs.dtype)
    for g in range(g_n):
        for e in range(e_n):
            best = sorted(range(t_n), key=lambda t: -float(probs[g, t, e]))[:cap]
            for c, t in enumerate(best):
                dispatch[g, t, e, c] = 1.0
                combine[g, t, e, c] = probs[g, t, e]
    return dispatch, combine


def einsum_moe(layer: MoEFFN, x: Tensor, groups: int, cap: int) -> Tensor:
    """The MoE layer as the official dense one-hot einsums (routing decided by the loops)."""
    b, n, d = x.shape
    xg = x.reshape(groups, -1, d)
    probs = (xg @ layer.router_weight).softmax(-1)
    with torch.no_grad():
        if layer.router == "experts_choose":
            dispatch, _ = loop_experts_choose(probs, cap)
        else:
            dispatch, _ = loop_tokens_choose(probs, layer.top_k, cap, layer.batch_prioritized)
    combine = dispatch * probs.unsqueeze(-1)  # differentiable gate, as the official combine
    expert_in = torch.einsum("gtec,gtd->egcd", dispatch, xg)
    h = layer.act(torch.einsum("egcd,edf->egcf", expert_in, layer.w1))
    out = torch.einsum("egcf,efd->egcd", h, layer.w2)
    y = torch.einsum("gtec,egcd->gtd", combine, out)
    return y.reshape(b, n, d)
