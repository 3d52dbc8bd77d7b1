"""Benchmark (spec section 7): the MoE layer's forward+backward against a dense FFN of equal
active parameters, the official-style one-hot einsum dispatch, and ``st-moe-pytorch`` (peer);
an AGD step against a summed-loss joint step (time and peak memory).

Every case is timed in this process in interleaved rounds; ``ratio`` = that impl's median over
ours (> 1: ours is faster; for the dense FFN baseline ``1 / ratio`` is the MoE layer's cost
relative to dense compute of the same active size).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.imp_moe.moe import FeedForward, MoEFFN
from paperzoo.imp_moe.routing import capacity, experts_choose, num_groups
from paperzoo.imp_moe.toy import TASKS, IMPToy

__all__ = ["BENCHMARK", "einsum_dispatch_forward", "run_bench"]


def einsum_dispatch_forward(layer: MoEFFN, x: Tensor) -> Tensor:
    """Experts-choose MoE with the official dense one-hot dispatch/combine einsums
    (``(G, T, E, C)`` masks; re-implemented for timing): the O(T*E*C*d) baseline of our
    gather/scatter."""
    b, n, d = x.shape
    e = layer.num_experts
    g = num_groups(b * n, layer.group_size, e)
    xg = x.reshape(g, -1, d)
    t = xg.shape[1]
    assert layer.capacity_factor is not None
    c = capacity(t, e, layer.capacity_factor)
    probs = (xg @ layer.router_weight).softmax(-1)
    token_idx, gate = experts_choose(probs, c)
    dispatch = torch.nn.functional.one_hot(token_idx, t).to(x.dtype)  # (G, E, C, T)
    expert_in = torch.einsum("gect,gtd->egcd", dispatch, xg)
    h = layer.act(torch.einsum("egcd,edf->egcf", expert_in, layer.w1))
    out = torch.einsum("egcf,efd->egcd", h, layer.w2)
    y = torch.einsum("gect,gec,egcd->gtd", dispatch, gate, out)
    return y.reshape(b, n, d)


def _try_st_moe() -> Any:
    try:
        return importlib.import_module("st_moe_pytorch")
    except ImportError:  # the bench dependency group is not installed
        return None


def _moe_cases(
    d: int, tokens: int, experts: int, cf: float, device: torch.device
) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    x = torch.randn(tokens // 256, 256, d, device=device, requires_grad=True)
    ec = MoEFFN(d, 4 * d, experts, capacity_factor=cf, validate=False).to(device)
    tc = MoEFFN(
        d, 4 * d, experts, router="tokens_choose", top_k=2, capacity_factor=cf, validate=False
    ).to(device)
    dense = FeedForward(d, 4 * d).to(device)

    def fb(fn: Callable[[], Any]) -> Callable[[], object]:
        def f() -> None:
            out = fn()
            y = out[0] if isinstance(out, tuple) else out
            y.sum().backward()

        return f

    impls: dict[str, Callable[[], object]] = {
        "MoEFFN experts-choose (ours)": fb(lambda: ec(x)),
        "dense FFN, same d_ff (baseline)": fb(lambda: dense(x)),
        "experts-choose, one-hot einsum dispatch (official style)": fb(
            lambda: einsum_dispatch_forward(ec, x)
        ),
        "MoEFFN tokens-choose top-2": fb(lambda: tc(x)),
    }
    st = _try_st_moe()
    if st is not None:
        peer = st.MoE(
            d,
            num_experts=experts,
            gating_top_n=2,
            threshold_train=0.0,
            capacity_factor_train=cf,
            is_distributed=False,
        ).to(device)
        impls["st-moe-pytorch MoE top-2 (peer, GEGLU experts)"] = fb(lambda: peer(x))
    return impls


def _agd_cases(device: torch.device) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    model = IMPToy().to(device)
    g = torch.Generator().manual_seed(0)
    batches = {
        "image": torch.rand(64, 1, 28, 28, generator=g),
        "sequence": torch.randn(64, 40, generator=g),
    }
    y = torch.randint(0, 10, (64,), generator=g)
    cap = torch.randint(0, 50, (64, 4), generator=g)
    data = {t: (batches[t.split("_")[0]].to(device), y.to(device), cap.to(device)) for t in TASKS}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    i = [0]

    def agd_step() -> None:  # one task per step, cycling through the four
        task = TASKS[i[0] % len(TASKS)]
        i[0] += 1
        model.task_loss(task, data[task]).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def agd_round() -> None:  # four AGD steps: the work of one joint step
        for _ in TASKS:
            agd_step()

    def joint_step() -> None:
        torch.stack([model.task_loss(t, data[t]) for t in TASKS]).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return {
        "AGD: 4 task steps (ours)": agd_round,
        "joint: 1 summed-loss step over the 4 tasks": joint_step,
    }


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` keeps the smaller MoE cases and shorter timings."""
    # one thread on the CPU (restored afterwards): the spec's setting for the ratio
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        return _run_cases(ctx)


def _run_cases(ctx: BenchContext) -> list[BenchRow]:
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rows: list[BenchRow] = []
    cases = [(256, 4096, 8, 1.0), (64, 4096, 8, 1.0), (256, 1024, 8, 1.0)]
    if not ctx.quick:
        cases += [(256, 4096, 4, 1.0), (256, 4096, 16, 1.0), (256, 4096, 8, 1.25)]
    for d, tokens, experts, cf in cases:
        rows += compare(
            f"MoE FFN fwd+bwd, d={d}, tokens={tokens}, E={experts}, c_f={cf}",
            _moe_cases(d, tokens, experts, cf, dev),
            ours="MoEFFN experts-choose (ours)",
            device=dev,
            min_run_time=rt,
            rounds=3 if dev.type == "cpu" else 7,
        )
    rows += compare(
        "IMP-tiny train step(s), batch 64 per task (4 tasks)",
        _agd_cases(dev),
        ours="AGD: 4 task steps (ours)",
        device=dev,
        min_run_time=rt,
        rounds=3,
    )
    return rows


BENCHMARK = Benchmark(
    name="imp-moe",
    description="MoE FFN vs dense FFN, one-hot einsum dispatch, st-moe-pytorch; AGD vs joint step",
    run=run_bench,
)
