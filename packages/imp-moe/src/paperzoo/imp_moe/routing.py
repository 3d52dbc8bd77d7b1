"""Sparse-MoE routing (spec 3.4): token groups, experts-choose and tokens-choose top-k routers,
the Switch load-balancing loss and the ST-MoE router z-loss.

Every router here works on token *groups*: ``probs`` has shape ``(G, T, E)`` (G groups of T
tokens, E experts) and routing never crosses a group. Both routers are turned into one slot table
``token_idx (G, E, C)``, ``gate (G, E, C)``: slot ``c`` of expert ``e`` in group ``g`` holds
token ``token_idx[g, e, c]`` (the sentinel ``T`` for an empty slot) with weight ``gate[g, e, c]``
(0 for an empty slot). The MoE layer gathers the tokens of that table, runs the experts on an
``(E, G*C, d)`` buffer and scatter-adds the gated outputs back: the same maths as the official
one-hot dispatch/combine einsums, in O(E*C*d) memory instead of O(T*E*C*d).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_float_tensor, check_positive, check_positive_int

__all__ = [
    "GroupRule",
    "capacity",
    "dropless_capacity",
    "experts_choose",
    "load_balancing_loss",
    "num_groups",
    "router_z_loss",
    "slot_table",
    "tokens_choose",
]

GroupRule = Literal["default", "official"]
"""How tokens are cut into groups: ``"default"`` = as few groups as keep ``T <= group_size``;
``"official"`` = the official code's rule, at least ``E`` groups with ``E | G``."""


def num_groups(
    num_tokens: int, group_size: int, num_experts: int, rule: GroupRule = "default"
) -> int:
    """The number of routing groups ``G`` (a divisor of ``num_tokens``).

    ``"default"``: the smallest ``G >= ceil(num_tokens / group_size)`` that divides
    ``num_tokens`` (so each group holds at most ``group_size`` tokens). ``"official"``
    (``imp/max/modeling/moe.py``, one replica): the smallest ``G >= max(floor(num_tokens /
    group_size), num_experts)`` with ``G | num_tokens`` and ``num_experts | G``.

    Raises:
        ValueError: no such ``G`` exists (official rule: ``num_tokens`` not a multiple of
            ``num_experts``), or a non-positive argument.
    """
    n = check_positive_int("num_tokens", num_tokens)
    s = check_positive_int("group_size", group_size)
    e = check_positive_int("num_experts", num_experts)
    if rule == "default":
        start = -(-n // s)
        return next(g for g in range(start, n + 1) if n % g == 0)
    if rule == "official":
        start = max(n // s, e)
        for g in range(start, n + 1):
            if n % g == 0 and g % e == 0:
                return g
        raise ValueError(
            f"group_rule: the official rule needs a number of groups >= {start} that divides "
            f"the {n} tokens and is a multiple of num_experts={e}; none exists"
        )
    raise ValueError(f"group_rule: expected one of ['default', 'official'], got {rule!r}")


def capacity(
    tokens_per_group: int, num_experts: int, capacity_factor: float, min_capacity: int = 0
) -> int:
    """Expert capacity ``C = max(round(c_f * T / E), C_min)``, at most ``T`` (a group has ``T``
    tokens; an expert never needs more slots).

    Python's ``round`` (half to even), as the official ``int(round(...))``.
    """
    check_positive_int("tokens_per_group", tokens_per_group)
    check_positive_int("num_experts", num_experts)
    cf = check_positive("capacity_factor", capacity_factor)
    check_positive_int("min_capacity", min_capacity, minimum=0)
    c = max(round(cf * tokens_per_group / num_experts), min_capacity)
    return max(1, min(c, tokens_per_group))


def router_z_loss(logits: Tensor, valid: Tensor | None = None) -> Tensor:
    """ST-MoE router z-loss: the mean over tokens of ``(logsumexp_e h_{t,e})^2``.

    Args:
        logits: router logits ``h`` of shape ``(..., E)`` (e.g. ``(G, T, E)``).
        valid: optional bool mask of shape ``logits.shape[:-1]``; only ``True`` tokens count.

    Returns:
        A 0-d tensor (``(log E)^2`` for all-zero logits).
    """
    check_float_tensor("logits", logits)
    z = torch.logsumexp(logits, dim=-1).square()
    if valid is None:
        return z.mean()
    w = valid.to(z.dtype)
    return (z * w).sum() / w.sum().clamp_min(1.0)


def load_balancing_loss(
    probs: Tensor, expert_index: Tensor, num_experts: int, valid: Tensor | None = None
) -> Tensor:
    """Switch-Transformer auxiliary load-balancing loss, per group then averaged over groups.

    ``E^2 * mean_e(f_e * P_e)`` where ``f_e`` is the fraction of tokens that send any of their
    ``k`` choices to expert ``e`` (before capacity drops, as the official code) and ``P_e`` the
    mean router probability of ``e`` over *all* tokens (the full softmax, not only the top-k:
    the Mixtral/aprender bug). 1 for perfectly balanced top-1 routing, ``k`` for balanced top-k,
    ``E`` when every token sends everything to one expert with probability 1.

    Args:
        probs: router probabilities ``(G, T, E)``.
        expert_index: chosen experts ``(G, T, k)`` (int64).
        num_experts: ``E``.
        valid: optional ``(G, T)`` bool mask of the tokens that count.

    Returns:
        A 0-d tensor.
    """
    check_float_tensor("probs", probs, ndim=3)
    e = check_positive_int("num_experts", num_experts)
    if probs.shape[-1] != e:
        raise ValueError(f"probs: expected last dimension {e}, got shape {tuple(probs.shape)}")
    chosen = F.one_hot(expert_index, e).amax(dim=-2).to(probs.dtype)  # (G, T, E)
    if valid is None:
        f = chosen.mean(dim=1)
        p = probs.mean(dim=1)
    else:
        w = valid.to(probs.dtype).unsqueeze(-1)
        n = w.sum(dim=1).clamp_min(1.0)
        f = (chosen * w).sum(dim=1) / n
        p = (probs * w).sum(dim=1) / n
    return (f * p).mean(dim=-1).mean() * e * e


def experts_choose(
    probs: Tensor, capacity: int, valid: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Experts-choose routing (Zhou et al. 2022; the IMP default): each expert takes the ``C``
    tokens of its group with the highest router probability.

    Args:
        probs: router probabilities ``(G, T, E)``.
        capacity: ``C`` in ``[1, T]``.
        valid: optional ``(G, T)`` bool mask; invalid (padding) tokens are chosen last and, if
            chosen, leave their slot empty.

    Returns:
        ``token_idx (G, E, C)`` int64 (``T`` for an empty slot) and ``gate (G, E, C)`` =
        ``probs[g, token, e]`` (0 for an empty slot). Slots are ordered by descending
        probability. A token may be chosen by 0..E experts.
    """
    check_float_tensor("probs", probs, ndim=3)
    t = probs.shape[1]
    c = check_positive_int("capacity", capacity)
    if c > t:
        raise ValueError(f"capacity: expected at most the {t} tokens of a group, got {c}")
    by_expert = probs.transpose(1, 2)  # (G, E, T)
    scores = by_expert.detach()
    if valid is not None:
        scores = scores.masked_fill(~valid.unsqueeze(1), -1.0)
    token_idx = scores.topk(c, dim=-1).indices  # (G, E, C)
    gate = by_expert.gather(-1, token_idx)
    if valid is not None:
        ok = valid.unsqueeze(1).expand_as(by_expert).gather(-1, token_idx)
        gate = gate * ok.to(gate.dtype)
        token_idx = token_idx.masked_fill(~ok, t)
    return token_idx, gate


def tokens_choose(
    probs: Tensor,
    k: int,
    capacity: int | None,
    batch_prioritized: bool = False,
    valid: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Tokens-choose top-k routing with expert capacity (Switch / V-MoE).

    Each token ranks its top-``k`` experts. Queue priority inside an expert: every token's first
    choice before any second choice, and within one choice rank by token order, or by descending
    top-1 probability with Batch-Prioritised Routing (``batch_prioritized``). A choice is dropped
    once its expert holds ``C`` tokens. Gates are the router probabilities (not renormalised
    over the top-k, as the official code).

    Args:
        probs: router probabilities ``(G, T, E)``.
        k: choices per token, ``1 <= k <= E``.
        capacity: ``C``; ``None`` = dropless (no choice is dropped).
        batch_prioritized: BPR queue order.
        valid: optional ``(G, T)`` bool mask; invalid tokens take no slot and are never kept.

    Returns:
        ``expert_idx (G, T, k)`` int64, ``slot (G, T, k)`` int64 (the choice's position in its
        expert's queue), ``gate (G, T, k)`` and ``keep (G, T, k)`` bool (``slot < C``).
    """
    check_float_tensor("probs", probs, ndim=3)
    g, t, e = probs.shape
    kk = check_positive_int("k", k)
    if kk > e:
        raise ValueError(f"top_k: expected at most num_experts={e}, got {kk}")
    gate, expert_idx = probs.topk(kk, dim=-1)  # (G, T, k)
    chosen = F.one_hot(expert_idx, e)  # (G, T, k, E)
    if valid is not None:
        chosen = chosen * valid[:, :, None, None].to(chosen.dtype)
    if batch_prioritized:
        order = gate[..., 0].detach().argsort(dim=1, descending=True, stable=True)  # (G, T)
        chosen = chosen.gather(1, order[:, :, None, None].expand_as(chosen))
    # queue: all first choices (in priority order), then all second choices, ...
    queue = chosen.transpose(1, 2).reshape(g, kk * t, e)
    position = (queue.cumsum(dim=1) - 1) * queue  # (G, k*T, E), position where chosen
    slot = position.sum(dim=-1).view(g, kk, t).transpose(1, 2)  # (G, T, k), priority order
    if batch_prioritized:
        slot = torch.empty_like(slot).scatter_(1, order.unsqueeze(-1).expand_as(slot), slot)
    real = torch.ones_like(slot, dtype=torch.bool) if valid is None else valid.unsqueeze(-1)
    keep = real.expand_as(slot) if capacity is None else real & (slot < capacity)
    return expert_idx, slot, gate, keep


def slot_table(
    expert_idx: Tensor, slot: Tensor, gate: Tensor, keep: Tensor, num_experts: int, capacity: int
) -> tuple[Tensor, Tensor]:
    """Tokens-choose assignments ``(G, T, k)`` as the experts-choose slot table ``(G, E, C)``.

    Returns:
        ``token_idx (G, E, C)`` (``T`` where empty) and ``gate (G, E, C)`` (0 where empty);
        differentiable with respect to ``gate``.
    """
    g, t, kk = expert_idx.shape
    e, c = num_experts, capacity
    group = torch.arange(g, device=slot.device).view(g, 1, 1)
    flat = (group * e + expert_idx) * c + slot.clamp(max=c - 1)
    dummy = g * e * c
    flat = torch.where(keep, flat, torch.full_like(flat, dummy)).reshape(-1)
    tok = torch.arange(t, device=slot.device).view(1, t, 1).expand(g, t, kk).reshape(-1)
    token_idx = torch.full((dummy + 1,), t, dtype=torch.long, device=slot.device)
    token_idx = token_idx.scatter(0, flat, tok)[:dummy].view(g, e, c)
    table_gate = gate.new_zeros(dummy + 1).scatter(0, flat, gate.reshape(-1))[:dummy]
    return token_idx, table_gate.view(g, e, c)


def dropless_capacity(expert_idx: Tensor, keep: Tensor, num_experts: int) -> int:
    """The largest expert load of any group (one host sync): the capacity that drops nothing."""
    load = F.one_hot(expert_idx, num_experts) * keep.unsqueeze(-1).to(torch.long)
    return max(1, int(load.sum(dim=(1, 2)).max()))
