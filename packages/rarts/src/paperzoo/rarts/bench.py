"""Benchmark (spec §7): seconds per search step and peak memory of each stepper on the same supernet.

Cases: the 1-D mnist1d supernet (C=8, N-R-N, 3 nodes, 8 ops, length 40) at batch 32/64/128, the 2-D digits
supernet (8×8, same cell) at batch 64, and the NATS-Bench tss supernet (C=16, 32×32 random tensors; N=2 cells
per stage instead of 5 to keep a CPU run short) at batch 32. Ours is RARTS with ``alpha_grad='lagged'``; ratios
are each implementation's median over ours in the same run (above 1: RARTS is faster).

Peer: NNI 3.0's DARTS (the spec's optional peer) is not raced — it needs NNI's own model-space API and
pytorch-lightning trainer rather than a stepper over a given supernet; DARTS-1st/2nd here are the baselines.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.nats import NATSSearchNetwork
from paperzoo.rarts.ops import MNIST1D_PRIMITIVES
from paperzoo.rarts.search import RARTS
from paperzoo.rarts.space import SearchNetwork
from paperzoo.rarts.stepper import SearchStepper, arch_parameters_of

__all__ = ["BENCHMARK", "run_bench"]


def _steppers(net: nn.Module) -> dict[str, SearchStepper]:
    def sgd(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4)

    def adam(m: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            arch_parameters_of(m), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
        )

    def weights(m: nn.Module) -> list[nn.Parameter]:
        arch = {id(a) for a in arch_parameters_of(m)}
        return [p for p in m.parameters() if id(p) not in arch]

    nets = {k: copy.deepcopy(net) for k in ("rarts", "rarts_exact", "darts1", "darts2")}
    return {
        "RARTS (lagged)": RARTS(nets["rarts"], sgd, adam(nets["rarts"])),
        "RARTS (exact)": RARTS(
            nets["rarts_exact"], sgd, adam(nets["rarts_exact"]), alpha_grad="exact"
        ),
        "DARTS-1st": DartsFirstOrder(
            nets["darts1"], sgd(weights(nets["darts1"])), adam(nets["darts1"])
        ),
        "DARTS-2nd": DartsSecondOrder(
            nets["darts2"], sgd(weights(nets["darts2"])), adam(nets["darts2"])
        ),
    }


def _case(
    name: str, net: nn.Module, shape: tuple[int, ...], classes: int, ctx: BenchContext, rt: float
) -> list[BenchRow]:
    g = torch.Generator().manual_seed(0)
    dev = ctx.device
    bt = (
        torch.randn(shape, generator=g).to(dev),
        torch.randint(0, classes, (shape[0],), generator=g).to(dev),
    )
    bv = (
        torch.randn(shape, generator=g).to(dev),
        torch.randint(0, classes, (shape[0],), generator=g).to(dev),
    )
    steppers = _steppers(net.to(dev))

    def call(s: SearchStepper) -> Callable[[], object]:
        return lambda: s.step(bt, bv)

    impls = {k: call(s) for k, s in steppers.items()}
    return compare(name, impls, ours="RARTS (lagged)", device=dev, min_run_time=rt)


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Race the steppers; see the module docstring for the cases."""
    with torch_threads(1):  # timed on one thread; the count before is restored
        torch.manual_seed(0)
        rt = 0.5 if ctx.quick else 2.0
        rows: list[BenchRow] = []
        one_d = SearchNetwork(
            8,
            10,
            3,
            steps=3,
            multiplier=3,
            primitives=MNIST1D_PRIMITIVES,
            in_channels=1,
            dims=1,
            reduction_cells=(1,),
        )
        for b in (64,) if ctx.quick else (32, 64, 128):
            rows += _case(f"1-D mnist1d supernet, batch {b}", one_d, (b, 1, 40), 10, ctx, rt)
        if not ctx.quick:
            two_d = SearchNetwork(
                8,
                10,
                3,
                steps=3,
                multiplier=3,
                primitives=MNIST1D_PRIMITIVES,
                in_channels=1,
                dims=2,
                reduction_cells=(1,),
            )
            rows += _case("2-D digits supernet (8x8), batch 64", two_d, (64, 1, 8, 8), 10, ctx, rt)
            nats = NATSSearchNetwork(C=16, N=2, num_classes=10)
            rows += _case(
                "NATS-tss supernet C=16 N=2 (32x32), batch 32", nats, (32, 3, 32, 32), 10, ctx, rt
            )
        return rows


BENCHMARK = Benchmark(
    name="rarts",
    description="seconds per search step: RARTS (lagged/exact) vs DARTS-1st vs DARTS-2nd on the same supernet",
    run=run_bench,
)
