"""Benchmark of NoProp (spec section 7), registered as ``paperzoo bench noprop``.

Per case (T blocks, batch B, MNIST-sized input 784, MLP blocks of width 256), one optimiser step
of: NoProp-DT all T blocks as a loop over blocks (ours, ``train_step(t=None)``, the default), the
same with the previous per-block terms, the vmapped all-blocks step, one Algorithm-1 block step,
and the end-to-end back-propagation chain; plus inference latency of DT vs CT/FM. There
is no NoProp package on PyPI, so the in-package back-propagation chain is the only baseline.
``ratio`` = that row's median over ours (> 1: ours is faster); ``peak_bytes`` from the core's
CPU profiler replay (or CUDA peak).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.noprop.blocks import MLPDenoiseBlock
from paperzoo.noprop.ct import NoPropCT
from paperzoo.noprop.dt import NoPropDT, backprop_chain_loss
from paperzoo.noprop.fm import NoPropFM
from paperzoo.noprop.vmapped import train_blocks_vmapped

__all__ = ["BENCHMARK", "run_bench"]

_D, _K, _H = 784, 10, 256


def _model(T: int, dev: torch.device) -> NoPropDT:
    return NoPropDT(lambda: MLPDenoiseBlock(_D, _K, _K, hidden=_H), _K, T=T, validate=False).to(dev)


def _train_impls(T: int, B: int, dev: torch.device) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    x = torch.rand(B, _D, device=dev)
    y = torch.randint(0, _K, (B,), device=dev)
    vm, loop, prev, one, chain = (_model(T, dev) for _ in range(5))
    opts = {
        name: torch.optim.AdamW(m.parameters(), lr=1e-3)
        for name, m in (("vm", vm), ("loop", loop), ("prev", prev), ("one", one), ("chain", chain))
    }

    def chain_step() -> None:
        opts["chain"].zero_grad(set_to_none=True)
        torch.autograd.backward(backprop_chain_loss(chain, x, y))
        opts["chain"].step()

    def previous_loop_step() -> None:  # 0.x: every term per block, the KL term T times
        opts["prev"].zero_grad(set_to_none=True)
        torch.autograd.backward(prev.all_block_losses(x, y, _impl="per_block").sum())
        opts["prev"].step()

    def one_step() -> Tensor:
        return one.train_step(x, y, opts["one"], t=T // 2 + 1)

    return {
        "NoProp-DT, all T blocks, loop (default)": lambda: loop.train_step(x, y, opts["loop"]),
        "NoProp-DT, all T blocks, loop, per-block terms (0.x)": previous_loop_step,
        "NoProp-DT, all T blocks, vmapped": lambda: train_blocks_vmapped(vm, x, y, opts["vm"]),
        "NoProp-DT, one block (Algorithm 1 step)": one_step,
        "backprop chain, end-to-end step": chain_step,
    }


def _inference_impls(T: int, B: int, dev: torch.device) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    x = torch.rand(B, _D, device=dev)
    dt = _model(T, dev).eval()
    ct = NoPropCT(MLPDenoiseBlock(_D, _K, _K, _H, time_dim=32), _K, validate=False).to(dev).eval()
    fm = NoPropFM(MLPDenoiseBlock(_D, _K, _K, _H, time_dim=32), _K, validate=False).to(dev).eval()

    def no_grad(f: Callable[[], Tensor]) -> Callable[[], object]:
        def g() -> object:
            with torch.no_grad():
                return f()

        return g

    return {
        f"NoProp-DT predict (T={T} blocks; = chain forward)": no_grad(lambda: dt.predict_logits(x)),
        f"NoProp-CT predict ({T} steps)": no_grad(lambda: ct.predict_logits(x, steps=T)),
        f"NoProp-FM predict ({T} steps)": no_grad(lambda: fm.predict_logits(x, steps=T)),
    }


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Race the training steps for T ∈ {5, 10, 20} × batch ∈ {64, 256} (quick: fewer)."""
    dev = ctx.device
    Ts = (5, 10) if ctx.quick else (5, 10, 20)
    Bs = (64,) if ctx.quick else (64, 256)
    rt = 0.3 if ctx.quick else 0.5
    rows: list[BenchRow] = []
    for T in Ts:
        for B in Bs:
            rows += compare(
                f"train step, T={T}, batch={B}, MLP blocks 784-{_H}",
                _train_impls(T, B, dev),
                ours="NoProp-DT, all T blocks, loop (default)",
                device=dev,
                min_run_time=rt,
            )
    rows += compare(
        f"inference, T=10, batch=256, MLP blocks 784-{_H}",
        _inference_impls(10, 256, dev),
        ours="NoProp-DT predict (T=10 blocks; = chain forward)",
        device=dev,
        min_run_time=rt,
    )
    return rows


BENCHMARK = Benchmark(
    name="noprop",
    description="NoProp-DT (vmapped / loop / one block) vs the back-propagation chain: "
    "time and peak memory per training step; DT/CT/FM inference latency",
    run=run_bench,
)
