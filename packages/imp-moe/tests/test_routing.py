"""Routing and the MoE layer against slow references (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from imp_moe_reference import einsum_moe, loop_experts_choose, loop_tokens_choose

from paperzoo.imp_moe import (
    FeedForward,
    MoEFFN,
    capacity,
    experts_choose,
    load_balancing_loss,
    num_groups,
    router_z_loss,
    slot_table,
    tokens_choose,
)

SETTINGS = [
    # router, E, k, c_f, group_size, bpr
    ("experts_choose", 4, 1, 1.0, 12, False),
    ("experts_choose", 3, 1, 1.5, 24, False),
    ("experts_choose", 8, 1, 0.5, 8, False),
    ("tokens_choose", 4, 1, 1.0, 12, False),
    ("tokens_choose", 4, 2, 1.0, 24, False),
    ("tokens_choose", 4, 2, 0.5, 6, True),
    ("tokens_choose", 3, 1, 0.7, 24, True),
    ("tokens_choose", 6, 3, 1.25, 12, False),
]


def _layer(
    router: str, e: int, k: int, cf: float, gs: int, bpr: bool = False, d: int = 6
) -> MoEFFN:
    torch.manual_seed(0)
    layer = MoEFFN(
        d,
        10,
        e,
        router=router,
        top_k=k,
        capacity_factor=cf,
        group_size=gs,  # type: ignore[arg-type]
        batch_prioritized=bpr,
    ).double()
    with torch.no_grad():
        layer.router_weight.normal_(0.0, 1.0)  # spread probabilities: no near-ties
    return layer


@pytest.mark.parametrize(("router", "e", "k", "cf", "gs", "bpr"), SETTINGS)
def test_gather_scatter_equals_one_hot_einsum_reference(
    router: str, e: int, k: int, cf: float, gs: int, bpr: bool
) -> None:
    layer = _layer(router, e, k, cf, gs, bpr)
    x = torch.randn(4, 6, 6, dtype=torch.float64, requires_grad=True)
    y, _ = layer(x)
    g = num_groups(24, gs, e)
    cap = capacity(24 // g, e, cf)
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref = einsum_moe(layer, x_ref, g, cap)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(y)
    params = [layer.router_weight, layer.w1, layer.w2]
    grads = torch.autograd.grad((y * w).sum(), [x, *params])
    grads_ref = torch.autograd.grad((y_ref * w).sum(), [x_ref, *params])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("router", ["experts_choose", "tokens_choose"])
def test_one_expert_equals_the_dense_ffn(router: str) -> None:
    moe = _layer(router, 1, 1, 1.0, 2048)
    dense = FeedForward(6, 10).double()
    with torch.no_grad():
        dense.w1.copy_(moe.w1[0])
        dense.w2.copy_(moe.w2[0])
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    y, aux = moe(x)
    torch.testing.assert_close(y, dense(x), rtol=0, atol=1e-14)
    assert float(aux.frac_dropped) == 0.0


def test_tokens_choose_without_overflow_is_top1_gate_times_its_expert() -> None:
    layer = _layer("tokens_choose", 4, 1, 4.0, 2048)  # capacity = T
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    y, _ = layer(x)
    probs = (x @ layer.router_weight).softmax(-1)
    for b in range(2):
        for t in range(5):
            e = int(probs[b, t].argmax())
            ffn = layer.act(x[b, t] @ layer.w1[e]) @ layer.w2[e]
            torch.testing.assert_close(y[b, t], probs[b, t, e] * ffn, rtol=1e-12, atol=1e-14)


def _all_prefer_expert0(t: int, e: int) -> torch.Tensor:
    logits = torch.zeros(1, t, e, dtype=torch.float64)
    logits[0, :, 0] = torch.linspace(1.0, 3.0, t, dtype=torch.float64)[torch.randperm(t)]
    return logits.softmax(-1)


def test_overflow_keeps_exactly_capacity_tokens_in_token_order() -> None:
    torch.manual_seed(1)
    probs = _all_prefer_expert0(10, 4)
    cap = capacity(10, 4, 1.0)
    assert cap == 2  # round(2.5) = 2 (half to even, as the official int(round(...)))
    _, slot, _, keep = tokens_choose(probs, 1, cap, batch_prioritized=False)
    assert int(keep.sum()) == cap
    assert keep[0, :cap, 0].all()  # the first tokens in order
    assert slot[0, :, 0].tolist() == list(range(10))


def test_overflow_with_bpr_keeps_the_highest_probability_tokens() -> None:
    torch.manual_seed(2)
    probs = _all_prefer_expert0(10, 4)
    _, _, _, keep = tokens_choose(probs, 1, 3, batch_prioritized=True)
    top3 = set(probs[0, :, 0].topk(3).indices.tolist())
    assert set(keep[0, :, 0].nonzero().flatten().tolist()) == top3


def test_frac_dropped_is_one_minus_capacity_over_tokens() -> None:
    layer = MoEFFN(4, 8, 4, router="tokens_choose", capacity_factor=1.0).double()
    with torch.no_grad():
        layer.router_weight.zero_()
        layer.router_weight[0, 0] = 10.0
    x = torch.randn(1, 12, 4, dtype=torch.float64).abs() + 0.5  # x[..., 0] > 0: all pick expert 0
    _, aux = layer(x)
    assert float(aux.frac_dropped) == pytest.approx(1 - capacity(12, 4, 1.0) / 12)


def test_first_choices_outrank_second_choices() -> None:
    torch.manual_seed(3)
    logits = torch.randn(2, 8, 3, dtype=torch.float64) * 3
    probs = logits.softmax(-1)
    expert, slot, _, _ = tokens_choose(probs, 2, 2, batch_prioritized=False)
    for g in range(2):
        for e in range(3):
            first = slot[g][expert[g][:, 0] == e, 0]
            second = slot[g][expert[g][:, 1] == e, 1]
            if len(first) and len(second):
                assert int(first.max()) < int(second.min())
    d_ref, _ = loop_tokens_choose(probs, 2, 2, bpr=False)
    _, _, gate, keep = tokens_choose(probs, 2, 2, batch_prioritized=False)
    tok, _gt = slot_table(expert, slot, gate, keep, 3, 2)
    d = torch.zeros_like(d_ref)
    for g in range(2):
        for e in range(3):
            for c in range(2):
                if int(tok[g, e, c]) < 8:
                    d[g, int(tok[g, e, c]), e, c] = 1.0
    torch.testing.assert_close(d, d_ref, rtol=0, atol=0)


def test_experts_choose_fills_every_expert_with_gate_equal_to_probability() -> None:
    torch.manual_seed(4)
    probs = torch.randn(3, 10, 4, dtype=torch.float64).softmax(-1)
    cap = capacity(10, 4, 1.0)
    tok, gate = experts_choose(probs, cap)
    assert tok.shape == (3, 4, cap) and bool((tok < 10).all())
    expected = probs.transpose(1, 2).gather(-1, tok)
    torch.testing.assert_close(gate, expected, rtol=0, atol=0)
    d_ref, _ = loop_experts_choose(probs, cap)
    assert bool((d_ref.sum(dim=1) == 1).all())  # each slot holds exactly one token
    for g in range(3):
        for e in range(4):
            assert set(tok[g, e].tolist()) == set(
                d_ref[g, :, e].sum(-1).nonzero().flatten().tolist()
            )


def test_experts_choose_is_permutation_equivariant() -> None:
    layer = _layer("experts_choose", 4, 1, 1.0, 2048)
    x = torch.randn(1, 12, 6, dtype=torch.float64)
    perm = torch.randperm(12)
    y, _ = layer(x)
    y_perm, _ = layer(x[:, perm])
    torch.testing.assert_close(y_perm, y[:, perm], rtol=1e-12, atol=1e-14)


def test_capacity_rounds_and_respects_minimum() -> None:
    assert capacity(10, 4, 1.0) == 2  # round(2.5) -> 2
    assert capacity(14, 4, 1.0) == 4  # round(3.5) -> 4
    assert capacity(10, 4, 1.0, min_capacity=3) == 3
    assert capacity(10, 4, 100.0) == 10  # never more than the group's tokens


def test_official_group_rule_gives_at_least_e_groups_dividing_tokens() -> None:
    assert num_groups(4096, 2048, 16, "default") == 2
    assert num_groups(4096, 2048, 16, "official") == 16
    assert num_groups(100, 2048, 4, "official") == 4
    assert num_groups(96, 40, 4, "default") == 3
    with pytest.raises(ValueError, match="official"):
        num_groups(10, 2048, 4, "official")


def test_balance_loss_is_one_at_balance_k_for_topk_and_e_when_collapsed() -> None:
    e, t = 4, 8
    uniform = torch.full((1, t, e), 1.0 / e, dtype=torch.float64)
    top1 = (torch.arange(t) % e).view(1, t, 1)
    assert float(load_balancing_loss(uniform, top1, e)) == pytest.approx(1.0)
    top2 = torch.stack([torch.arange(t) % e, (torch.arange(t) + 1) % e], -1).view(1, t, 2)
    assert float(load_balancing_loss(uniform, top2, e)) == pytest.approx(2.0)
    onehot = torch.zeros(1, t, e, dtype=torch.float64)
    onehot[..., 0] = 1.0
    assert float(load_balancing_loss(onehot, torch.zeros(1, t, 1, dtype=torch.long), e)) == (
        pytest.approx(float(e))
    )


def test_balance_loss_averages_the_full_softmax_over_all_tokens() -> None:
    """Regression (Mixtral/aprender): P_e is the mean of the full softmax, not of the top-k."""
    torch.manual_seed(5)
    probs = torch.randn(2, 6, 3, dtype=torch.float64).softmax(-1)
    idx = probs.argmax(-1, keepdim=True)
    loss = load_balancing_loss(probs, idx, 3)
    ref = 0.0
    for g in range(2):
        f = [sum(int(idx[g, t, 0]) == e for t in range(6)) / 6 for e in range(3)]
        p = [sum(float(probs[g, t, e]) for t in range(6)) / 6 for e in range(3)]
        ref += 9 * sum(fi * pi for fi, pi in zip(f, p, strict=True)) / 3 / 2
    assert float(loss) == pytest.approx(ref, rel=1e-12)


def test_z_loss_of_zero_logits_is_log_e_squared_and_gradcheck() -> None:
    assert float(router_z_loss(torch.zeros(2, 5, 8))) == pytest.approx(math.log(8) ** 2, rel=1e-6)
    h = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(router_z_loss, (h,))


@pytest.mark.parametrize("router", ["experts_choose", "tokens_choose"])
def test_moe_gradcheck_wrt_input_router_and_experts(router: str) -> None:
    layer = _layer(router, 3, 1, 1.0, 2048, False, d=4)
    x = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    params = (layer.router_weight, layer.w1, layer.w2)

    def f(xx: torch.Tensor, r: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        with torch.nn.utils.stateless._reparametrize_module(  # type: ignore[attr-defined]
            layer, {"router_weight": r, "w1": w1, "w2": w2}
        ):
            return layer(xx)[0]

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-7, atol=1e-6)


def test_padding_tokens_are_routed_nowhere_and_output_zero() -> None:
    for router in ("experts_choose", "tokens_choose"):
        layer = _layer(router, 2, 1, 2.0, 2048)
        x = torch.randn(2, 4, 6, dtype=torch.float64)
        pad = torch.tensor([[False, False, True, True], [False, False, False, True]])
        y, aux = layer(x, pad)
        assert bool((y[pad] == 0).all())
        assert float(aux.frac_dropped) == 0.0
