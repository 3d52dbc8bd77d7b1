"""The sparse MoE feed-forward layer (spec 3.4) and the dense FFN it replaces.

:class:`MoEFFN` routes each group of tokens with experts-choose (IMP's default) or tokens-choose
top-k routing, runs the experts as batched matmuls over stacked weights ``(E, d, d_ff)`` and
returns the output with its auxiliary losses and routing metrics (:class:`MoEAux`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)
from paperzoo.imp_moe.routing import (
    GroupRule,
    capacity,
    dropless_capacity,
    experts_choose,
    load_balancing_loss,
    num_groups,
    router_z_loss,
    slot_table,
    tokens_choose,
)

__all__ = ["ACTIVATIONS", "FeedForward", "MoEAux", "MoEFFN", "expert_forward"]

Activation = Literal["gelu_tanh", "gelu", "relu"]
ACTIVATIONS: dict[str, nn.Module] = {
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "gelu": nn.GELU(),
    "relu": nn.ReLU(),
}
"""The FFN activations by name (IMP: ``"gelu_tanh"``, the tanh-approximate GELU)."""

#: (balance_coef, z_coef) presets: ST-MoE's recommendation and the official IMP code (both 1)
AUX_PRESETS: dict[str, tuple[float, float]] = {"st_moe": (1e-2, 1e-3), "official": (1.0, 1.0)}


def _check_tokens(name: str, x: object, d_model: int) -> Tensor:
    t = check_float_tensor(name, x, ndim=3, nonempty=True)
    if t.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one token, got shape {tuple(t.shape)}")
    if t.shape[-1] != d_model:
        raise ValueError(
            f"{name}: expected last dimension d_model={d_model}, got shape {tuple(t.shape)}"
        )
    return t


class FeedForward(nn.Module):
    """The dense Transformer FFN ``W2 act(W1 x)`` without biases (IMP: d_ff = 4d, tanh GELU).

    Shapes: ``(B, N, d) -> (B, N, d)``. Weights are stored as ``w1 (d, d_ff)`` and ``w2 (d_ff,
    d)`` (the layout of one expert of :class:`MoEFFN`, so a one-expert MoE can copy them).
    Init: Xavier-uniform (the Flax ViT MLP default; IMP's exact initialiser is unverified).
    """

    def __init__(self, d_model: int, d_ff: int, activation: Activation = "gelu_tanh") -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.d_ff = check_positive_int("d_ff", d_ff)
        self.activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        self.act = ACTIVATIONS[activation]
        self.w1 = nn.Parameter(torch.empty(d_model, d_ff))
        self.w2 = nn.Parameter(torch.empty(d_ff, d_model))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights."""
        nn.init.xavier_uniform_(self.w1)
        nn.init.xavier_uniform_(self.w2)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, d) -> (B, N, d)``."""
        _check_tokens("x", x, self.d_model)
        out: Tensor = self.act(x @ self.w1) @ self.w2
        return out


@dataclass(frozen=True)
class MoEAux:
    """What :class:`MoEFFN` returns beside its output (all tensors, no host sync).

    Attributes:
        loss: ``balance_coef * balance + z_coef * z``, the term to add to the task loss (0-d).
        balance: the load-balancing loss (0-d; 0 for experts-choose, balanced by construction).
        z: the router z-loss (0-d).
        frac_dropped: share of (non-padding) tokens that no expert processed (0-d).
        expert_load: ``(E,)`` share of the processed (token, expert) assignments per expert.
        router_confidence: mean gate of the processed assignments (0-d).
    """

    loss: Tensor
    balance: Tensor
    z: Tensor
    frac_dropped: Tensor
    expert_load: Tensor
    router_confidence: Tensor


def expert_forward(
    x: Tensor, token_idx: Tensor, gate: Tensor, w1: Tensor, w2: Tensor, act: nn.Module
) -> Tensor:
    """Run the experts on a slot table and combine: ``y_t = sum_{(e,c) holding t} gate *
    FFN_e(x_t)``.

    Args:
        x: tokens ``(G, T, d)``.
        token_idx: ``(G, E, C)`` slot table (``T`` = empty slot).
        gate: ``(G, E, C)`` weights (0 for empty slots).
        w1: stacked expert weights ``(E, d, d_ff)``; w2: ``(E, d_ff, d)``.
        act: the activation.

    Returns:
        ``(G, T, d)``; tokens in no slot give 0.
    """
    g, t, d = x.shape
    e, c = token_idx.shape[1], token_idx.shape[2]
    x_pad = torch.cat([x, x.new_zeros(g, 1, d)], dim=1)  # row T: the empty slot's zero token
    idx = token_idx.reshape(g, e * c, 1).expand(g, e * c, d)
    buf = x_pad.gather(1, idx).view(g, e, c, d).transpose(0, 1).reshape(e, g * c, d)
    out = torch.bmm(act(torch.bmm(buf, w1)), w2)  # (E, G*C, d)
    out = out * gate.transpose(0, 1).reshape(e, g * c, 1).to(out.dtype)
    out = out.view(e, g, c, d).transpose(0, 1).reshape(g, e * c, d)
    y = x.new_zeros(g, t + 1, d).scatter_add(1, idx, out)
    return y[:, :t]


class MoEFFN(nn.Module):
    """Sparse mixture-of-experts FFN (IMP / V-MoE / Switch), a drop-in for :class:`FeedForward`.

    Tokens ``(B, N, d)`` are flattened and cut into ``G`` groups of ``T`` tokens
    (:func:`~paperzoo.imp_moe.routing.num_groups`); per group a float32 router ``h = x W_r``
    (``W_r (d, E)``, no bias, init N(0, 0.02^2)), ``p = softmax(h)``, capacity ``C =
    max(round(c_f T / E), C_min)``, then experts-choose or tokens-choose routing (see
    :mod:`paperzoo.imp_moe.routing`). Experts: independently initialised FFNs, stacked as ``w1
    (E, d, d_ff)``, ``w2 (E, d_ff, d)``.

    Args:
        d_model, d_ff: sizes; num_experts: ``E``.
        router: ``"experts_choose"`` (IMP default) or ``"tokens_choose"``.
        top_k: choices per token (tokens-choose).
        capacity_factor: ``c_f``; ``None`` = dropless (tokens-choose only; one host sync).
        min_capacity: ``C_min``.
        group_size: most tokens per group (official max_group_size 2048).
        group_rule: ``"default"`` or ``"official"`` (at least ``E`` groups, changes
            experts-choose results).
        jitter: multiplicative router-input noise ``x * U(1-eps, 1+eps)`` in training.
        batch_prioritized: BPR queue order (tokens-choose).
        balance_coef, z_coef: coefficients of the auxiliary losses; ``None`` takes them from
            ``coefficients``.
        coefficients: ``"st_moe"`` (balance 1e-2, z 1e-3) or ``"official"`` (1, 1).
        activation: expert activation. causal: the layer sits in a causal decoder
            (experts-choose is then refused: it uses future tokens).
        name: names the layer in error messages. validate: check router logits for NaN/inf.

    Shapes: ``forward(x (B, N, d), padding_mask (B, N) bool | None) -> (y (B, N, d), MoEAux)``;
    ``padding_mask`` is ``True`` at padding tokens (they are routed nowhere and output 0).

    Deviation: the router's matmul runs in ``promote(x.dtype, float32)`` (float64 stays float64
    for tests); dispatch is gather/scatter, not the official one-hot einsums (same maths).
    Deviation: default aux coefficients are ST-MoE's (``coefficients="st_moe"``); the official
    IMP code adds both losses with coefficient 1 (``coefficients="official"``).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        num_experts: int,
        router: Literal["experts_choose", "tokens_choose"] = "experts_choose",
        top_k: int = 1,
        capacity_factor: float | None = 1.0,
        min_capacity: int = 0,
        group_size: int = 2048,
        group_rule: GroupRule = "default",
        jitter: float = 0.0,
        batch_prioritized: bool = False,
        balance_coef: float | None = None,
        z_coef: float | None = None,
        coefficients: Literal["st_moe", "official"] = "st_moe",
        activation: Activation = "gelu_tanh",
        causal: bool = False,
        name: str = "MoEFFN",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.d_ff = check_positive_int("d_ff", d_ff)
        self.num_experts = check_positive_int("num_experts", num_experts)
        self.router = check_choice("router", router, ("experts_choose", "tokens_choose"))
        self.top_k = check_positive_int("top_k", top_k)
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k: expected at most num_experts={num_experts}, got {top_k}")
        if capacity_factor is None:
            if router == "experts_choose":
                raise ValueError(
                    "capacity_factor: experts-choose routing needs a capacity factor, got None "
                    "(dropless routing is tokens-choose only)"
                )
            self.capacity_factor: float | None = None
        else:
            self.capacity_factor = check_positive("capacity_factor", capacity_factor)
        if causal and router == "experts_choose":
            raise ValueError(
                "causal: experts-choose routing uses future tokens (each expert ranks the whole "
                "group), so it cannot sit in a causal decoder; use router='tokens_choose'"
            )
        self.min_capacity = check_positive_int("min_capacity", min_capacity, minimum=0)
        self.group_size = check_positive_int("group_size", group_size)
        check_choice("group_rule", group_rule, ("default", "official"))
        self.group_rule: GroupRule = group_rule
        self.jitter = check_positive("jitter", jitter, allow_zero=True)
        if self.jitter >= 1.0:
            raise ValueError(f"jitter: expected a value in [0, 1), got {jitter!r}")
        self.batch_prioritized = bool(batch_prioritized)
        check_choice("coefficients", coefficients, tuple(AUX_PRESETS))
        preset = AUX_PRESETS[coefficients]
        self.balance_coef = check_positive(
            "balance_coef", preset[0] if balance_coef is None else balance_coef, allow_zero=True
        )
        self.z_coef = check_positive(
            "z_coef", preset[1] if z_coef is None else z_coef, allow_zero=True
        )
        self.activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        self.act = ACTIVATIONS[activation]
        self.causal = bool(causal)
        self.name = name
        self.validate = validate
        e = self.num_experts
        self.router_weight = nn.Parameter(torch.empty(d_model, e))
        self.w1 = nn.Parameter(torch.empty(e, d_model, d_ff))
        self.w2 = nn.Parameter(torch.empty(e, d_ff, d_model))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Router N(0, 0.02^2); each expert Xavier-uniform, independently drawn."""
        nn.init.normal_(self.router_weight, std=0.02)
        for i in range(self.num_experts):
            nn.init.xavier_uniform_(self.w1.data[i])
            nn.init.xavier_uniform_(self.w2.data[i])

    def route(self, probs: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Slot table ``(token_idx, gate)`` ``(G, E, C)`` and, for tokens-choose, the chosen
        experts ``(G, T, k)`` (for the balance loss) of router probabilities ``(G, T, E)``."""
        t, e = probs.shape[1], self.num_experts
        if self.router == "experts_choose":
            assert self.capacity_factor is not None
            c = capacity(t, e, self.capacity_factor, self.min_capacity)
            token_idx, gate = experts_choose(probs, c, valid)
            return token_idx, gate, None
        cap = (
            None
            if self.capacity_factor is None
            else capacity(t, e, self.capacity_factor, self.min_capacity)
        )
        expert_idx, slot, gate_k, keep = tokens_choose(
            probs, self.top_k, cap, self.batch_prioritized, valid
        )
        c = dropless_capacity(expert_idx, keep, e) if cap is None else cap
        token_idx, gate = slot_table(expert_idx, slot, gate_k, keep, e, c)
        return token_idx, gate, expert_idx

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, MoEAux]:
        """``x (B, N, d)``, ``padding_mask (B, N)`` bool (True = padding) -> ``(y (B, N, d),
        MoEAux)``.

        Raises:
            TypeError/ValueError: ``x`` not a 3-D float tensor with last dim ``d_model``, an
                empty batch or no tokens, a ``padding_mask`` of another shape or dtype, or
                NaN/inf router logits (the message names the layer).
        """
        _check_tokens("x", x, self.d_model)
        b, n, d = x.shape
        valid: Tensor | None = None
        if padding_mask is not None:
            if not isinstance(padding_mask, Tensor) or padding_mask.dtype != torch.bool:
                raise TypeError("padding_mask: expected a bool tensor (True = padding)")
            if padding_mask.shape != (b, n):
                raise ValueError(
                    f"padding_mask: expected shape {(b, n)}, got {tuple(padding_mask.shape)}"
                )
        g = num_groups(b * n, self.group_size, self.num_experts, self.group_rule)
        t = b * n // g
        xg = x.reshape(g, t, d)
        if padding_mask is not None:
            valid = ~padding_mask.reshape(g, t)
        r_in = xg
        if self.training and self.jitter > 0:
            noise = torch.empty_like(xg).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
            r_in = xg * noise
        rdt = torch.promote_types(x.dtype, torch.float32)
        logits = r_in.to(rdt) @ self.router_weight.to(rdt)  # (G, T, E)
        check_finite(f"{self.name}: router logits", logits, validate=self.validate)
        probs = logits.softmax(dim=-1)
        token_idx, gate, expert_idx = self.route(probs, valid)
        y = expert_forward(xg, token_idx, gate.to(x.dtype), self.w1, self.w2, self.act)
        z = router_z_loss(logits, valid)
        balance = (
            load_balancing_loss(probs, expert_idx, self.num_experts, valid)
            if expert_idx is not None
            else logits.new_zeros(())
        )
        aux = self._metrics(token_idx, gate, valid, t, z, balance)
        return y.reshape(b, n, d), aux

    def _metrics(
        self,
        token_idx: Tensor,
        gate: Tensor,
        valid: Tensor | None,
        t: int,
        z: Tensor,
        balance: Tensor,
    ) -> MoEAux:
        g, _e, _ = token_idx.shape
        filled = token_idx < t
        hits = torch.zeros(g, t + 1, dtype=gate.dtype, device=gate.device)
        hits = hits.scatter_add(1, token_idx.view(g, -1), filled.view(g, -1).to(gate.dtype))
        routed = hits[:, :t] > 0
        real = torch.ones_like(routed) if valid is None else valid
        n_real = real.sum().clamp_min(1)
        frac_dropped = (real & ~routed).sum().to(gate.dtype) / n_real
        per_expert = filled.sum(dim=(0, 2)).to(gate.dtype)
        load = per_expert / per_expert.sum().clamp_min(1.0)
        conf = (gate.detach() * filled).sum() / filled.sum().clamp_min(1)
        loss = self.balance_coef * balance + self.z_coef * z
        return MoEAux(loss, balance, z, frac_dropped, load, conf)

    def extra_repr(self) -> str:
        """The routing settings."""
        return (
            f"d_model={self.d_model}, d_ff={self.d_ff}, num_experts={self.num_experts}, "
            f"router={self.router!r}, top_k={self.top_k}, capacity_factor={self.capacity_factor}"
        )
