"""The modality-agnostic IMP encoder (spec 3.1): pre-LN Transformer blocks shared by every
modality, thin stems in front, sparse MoE FFNs in the last (or evenly spread) blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive_int
from paperzoo.imp_moe.moe import Activation, FeedForward, MoEAux, MoEFFN, _check_tokens

__all__ = ["Attention", "IMPEncoder", "TransformerBlock", "moe_layer_indices"]


class Attention(nn.Module):
    """Multi-head self-attention without biases, optional qk-LayerNorm (IMP's MoE models).

    Shapes: ``(B, N, d) -> (B, N, d)``; non-causal.
    """

    def __init__(self, d_model: int, heads: int, qk_layernorm: bool = False) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.heads = check_positive_int("heads", heads)
        if d_model % heads:
            raise ValueError(f"heads: expected a divisor of d_model={d_model}, got {heads}")
        hd = d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.q_norm: nn.Module = nn.LayerNorm(hd) if qk_layernorm else nn.Identity()
        self.k_norm: nn.Module = nn.LayerNorm(hd) if qk_layernorm else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections, unit LayerNorms."""
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.xavier_uniform_(self.out.weight)
        for m in (self.q_norm, self.k_norm):
            if isinstance(m, nn.LayerNorm):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, d) -> (B, N, d)``."""
        _check_tokens("x", x, self.d_model)
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        out: Tensor = self.out(y.transpose(1, 2).reshape(b, n, d))
        return out


class TransformerBlock(nn.Module):
    """Pre-LN block ``x + Attn(LN x)``, then ``x + FFN(LN x)`` where FFN is dense or MoE.

    Shapes: ``forward(x (B, N, d)) -> (y (B, N, d), aux MoEAux | None)``.
    """

    def __init__(
        self, d_model: int, heads: int, ffn: FeedForward | MoEFFN, qk_layernorm: bool = False
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, qk_layernorm)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = ffn

    def reset_parameters(self) -> None:
        """Reset every sub-layer."""
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        self.attn.reset_parameters()
        self.ffn.reset_parameters()

    def forward(self, x: Tensor) -> tuple[Tensor, MoEAux | None]:
        """``(B, N, d) -> ((B, N, d), MoEAux | None)``."""
        _check_tokens("x", x, self.attn.d_model)
        x = x + self.attn(self.norm1(x))
        h = self.ffn(self.norm2(x))
        if isinstance(h, tuple):
            return x + h[0], h[1]
        return x + h, None


def moe_layer_indices(depth: int, num_moe_layers: int, placement: str = "last") -> list[int]:
    """Which blocks hold MoE FFNs: the last ``num_moe_layers`` (``"last"``, IMP) or every
    ``depth // num_moe_layers``-th block ending at the last one (``"uniform"``)."""
    check_positive_int("depth", depth)
    m = check_positive_int("num_moe_layers", num_moe_layers, minimum=0)
    check_choice("moe_placement", placement, ("last", "uniform"))
    if m > depth:
        raise ValueError(f"num_moe_layers: expected at most depth={depth}, got {m}")
    if m == 0:
        return []
    if placement == "last":
        return list(range(depth - m, depth))
    step = depth // m
    return [depth - 1 - step * i for i in range(m)][::-1]


class IMPEncoder(nn.Module):
    """IMP's shared encoder: modality stems -> pre-LN Transformer blocks -> LayerNorm -> mean pool.

    Args:
        d_model, depth, heads: sizes (IMP-S 384/12/6, B 768/12/12, L 1024/24/16).
        stems: ``{modality: stem}``; each maps its input to ``(B, N, d_model)``.
        num_moe_layers: blocks whose FFN is a :class:`MoEFFN` (IMP-MoE-B/L: 6).
        moe_placement: ``"last"`` (IMP) or ``"uniform"``.
        moe_kwargs: keyword arguments of :class:`MoEFFN` (``num_experts`` defaults to 4).
        qk_layernorm: qk-LayerNorm in attention (IMP's MoE models).
        d_ff: FFN width (default ``4 * d_model``). activation: FFN activation.

    Shapes: ``forward(x, modality) -> (tokens (B, N, d), pooled (B, d), aux_loss 0-d)``; ``aux_loss``
    sums the MoE layers' auxiliary losses (0 without MoE). The MoE layers' :class:`MoEAux` of the
    last forward are in ``last_aux``.
    """

    def __init__(
        self,
        d_model: int,
        depth: int,
        heads: int,
        stems: Mapping[str, nn.Module],
        num_moe_layers: int = 0,
        moe_placement: Literal["last", "uniform"] = "last",
        moe_kwargs: Mapping[str, Any] | None = None,
        qk_layernorm: bool = False,
        d_ff: int | None = None,
        activation: Activation = "gelu_tanh",
    ) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.depth = check_positive_int("depth", depth)
        if not stems:
            raise ValueError("stems: expected at least one modality stem, got none")
        self.stems = nn.ModuleDict(dict(stems))
        ff = 4 * d_model if d_ff is None else check_positive_int("d_ff", d_ff)
        moe_at = set(moe_layer_indices(depth, num_moe_layers, moe_placement))
        kw: dict[str, Any] = {"num_experts": 4, "activation": activation, **(moe_kwargs or {})}
        blocks = []
        for i in range(depth):
            ffn: FeedForward | MoEFFN = (
                MoEFFN(d_model, ff, name=f"blocks.{i}.ffn", **kw)
                if i in moe_at
                else FeedForward(d_model, ff, activation)
            )
            blocks.append(TransformerBlock(d_model, heads, ffn, qk_layernorm))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d_model)
        self.last_aux: list[MoEAux] = []

    def reset_parameters(self) -> None:
        """Reset every stem and block."""
        for m in (*self.stems.values(), *self.blocks):
            m.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor, modality: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Encode ``x`` with the stem of ``modality`` (optional when there is one stem).

        Raises:
            ValueError: an unknown modality key (the message lists the stems).
        """
        if modality is None:
            if len(self.stems) != 1:
                raise ValueError(
                    f"modality: expected one of {list(self.stems)} (several stems), got None"
                )
            modality = next(iter(self.stems))
        if modality not in self.stems:
            raise ValueError(f"modality: expected one of {list(self.stems)}, got {modality!r}")
        h = self.stems[modality](x)
        _check_tokens(f"stems[{modality!r}] output", h, self.d_model)
        aux_loss = h.new_zeros(())
        auxes: list[MoEAux] = []
        for block in self.blocks:
            h, aux = block(h)
            if aux is not None:
                aux_loss = aux_loss + aux.loss.to(h.dtype)
                auxes.append(aux)
        self.last_aux = auxes
        tokens = self.norm(h)
        return tokens, tokens.mean(dim=1), aux_loss
