"""Benchmark (spec section 7): AMCL NT-Xent forward + backward against plain NT-Xent.

Per case (batch ``B``, heads ``C``, dimension ``d'``), in one process: AMCL logsumexp with the
``dot`` temperature network (ours, ratio 1), AMCL max mode, AMCL logsumexp with the ``concat``
network (separable trick), this package's NT-Xent (``C = 1``, constant tau), and the peers
lightly ``NTXentLoss`` and pytorch-metric-learning ``NTXentLoss`` (single head, when installed).
``ratio`` = impl median / ours (< 1: that impl is faster than ours).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from paperzoo.amcl.losses import amcl_ntxent_loss
from paperzoo.amcl.temperature import ConstantTemperature, PairTemperature
from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare

__all__ = ["BENCHMARK", "run_bench"]


def _step(fn: Callable[[Tensor, Tensor], Tensor], z1: Tensor, z2: Tensor) -> Callable[[], None]:
    def run() -> None:
        a = z1.detach().requires_grad_(True)
        b = z2.detach().requires_grad_(True)
        fn(a, b).backward()

    return run


def _peers(tau: float) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    out: dict[str, Callable[[Tensor, Tensor], Tensor]] = {}
    try:
        lightly = importlib.import_module("lightly.loss")
        lt = lightly.NTXentLoss(temperature=tau)
        out["lightly NTXentLoss (1 head)"] = lambda a, b: lt(a[0], b[0])
    except ImportError:
        pass
    try:
        pml = importlib.import_module("pytorch_metric_learning.losses")
        pl = pml.NTXentLoss(temperature=tau)

        def pml_loss(a: Tensor, b: Tensor) -> Tensor:
            n = a.shape[1]
            labels = torch.arange(n, device=a.device).repeat(2)
            return pl(torch.cat([a[0], b[0]]), labels)  # type: ignore[no-any-return]

        out["PML NTXentLoss (1 head)"] = pml_loss
    except ImportError:
        pass
    return out


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Time every case; see the module docstring."""
    dev = ctx.device
    batches = (128,) if ctx.quick else (128, 256, 1024)
    heads = (1, 3) if ctx.quick else (1, 3, 5)
    dims = (128,) if ctx.quick else (64, 128)
    rows: list[BenchRow] = []
    for b in batches:
        for c in heads:
            for d in dims:
                torch.manual_seed(0)
                z1 = torch.randn(c, b, d, device=dev)
                z2 = torch.randn(c, b, d, device=dev)
                dot = PairTemperature(d, hidden=d, num_heads=c, form="dot").to(dev)
                concat = PairTemperature(d, hidden=128, num_heads=c).to(dev)
                const = ConstantTemperature(0.5)
                ntx = partial(amcl_ntxent_loss, validate=False)
                impls = {
                    "AMCL logsumexp dot (ours)": _step(partial(ntx, temperature=dot), z1, z2),
                    "AMCL max dot": _step(partial(ntx, temperature=dot, negatives="max"), z1, z2),
                    "NT-Xent (this package, 1 head)": _step(
                        partial(ntx, temperature=const, beta=0.0, include_positive=True),
                        z1[:1],
                        z2[:1],
                    ),
                }
                if b <= 256:  # (C, 2B, 2B, 128) hidden activations: ~1 GB per head at B = 1024
                    impls["AMCL logsumexp concat"] = _step(partial(ntx, temperature=concat), z1, z2)
                impls.update({k: _step(f, z1, z2) for k, f in _peers(0.5).items()})
                rows += compare(
                    f"B={b} C={c} d'={d}",
                    impls,
                    ours="AMCL logsumexp dot (ours)",
                    device=dev,
                    min_run_time=0.3 if ctx.quick else 1.0,
                    memory=not ctx.quick,
                )
    return rows


BENCHMARK = Benchmark(
    name="amcl",
    description="AMCL NT-Xent (logsumexp/max, dot/concat temperature nets) vs NT-Xent, lightly and PML",
    run=run_bench,
)
