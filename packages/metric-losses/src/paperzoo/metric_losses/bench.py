"""Benchmark (``paperzoo bench metric-losses``): MS loss + mining, forward and backward.

Races, in the same process and run, on float32 embeddings:

* ``ours``: :class:`MultiSimilarityLoss` (one similarity matrix for mining and loss, closed-form
  backward);
* ``pml``: pytorch-metric-learning's ``MultiSimilarityLoss()(e, y, MultiSimilarityMiner(0.1)(e, y))``
  (the peer; skipped when it is not installed, it lives in the ``bench`` dependency group);
* ``official-loop``: a per-anchor Python loop with the official code's structure (boolean
  indexing, mining and weighting per anchor), the baseline.

``ratio`` = that implementation's median time over ours (above 1: we are faster). One intra-op
thread by default: on a shared machine more threads oversubscribe the cores and make the timings
noise; set ``PAPERZOO_BENCH_THREADS`` to change it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads

from .multi_similarity import MultiSimilarityLoss

__all__ = ["BENCHMARK", "official_style_loop", "run_bench"]

log = logging.getLogger(__name__)


def official_style_loop(
    e: Tensor,
    y: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    eps: float = 0.1,
) -> Tensor:
    """MS loss + mining as one Python loop over anchors, like the official implementation.

    Same semantics as ours (self pair by index, anchors with an empty mined set skipped, mean over
    all B anchors); used as the per-anchor baseline of the benchmark.
    """
    f = F.normalize(e, dim=1)
    sim = f @ f.T
    b = e.shape[0]
    idx = torch.arange(b, device=e.device)
    total = sim.new_zeros(())
    for i in range(b):
        row = sim[i]
        same = y == y[i]
        pos_all = row[same & (idx != i)]
        neg_all = row[~same]
        if pos_all.numel() == 0 or neg_all.numel() == 0:
            continue
        neg = neg_all[neg_all + eps > pos_all.min()]
        pos = pos_all[pos_all - eps < neg_all.max()]
        if neg.numel() == 0 or pos.numel() == 0:
            continue
        pos_loss = torch.log1p(torch.exp(-alpha * (pos - base)).sum()) / alpha
        neg_loss = torch.log1p(torch.exp(beta * (neg - base)).sum()) / beta
        total = total + pos_loss + neg_loss
    return total / b


def _ours_step(loss: MultiSimilarityLoss, e: Tensor, y: Tensor) -> None:
    loss(e, y).backward()
    e.grad = None


def _pml_step(
    loss: Callable[..., Tensor], miner: Callable[..., object], e: Tensor, y: Tensor
) -> None:
    loss(e, y, miner(e, y)).backward()
    e.grad = None


def _loop_step(e: Tensor, y: Tensor) -> None:
    official_style_loop(e, y).backward()
    e.grad = None


def _cases(quick: bool) -> list[tuple[int, int]]:
    if quick:
        return [(256, 128), (512, 128)]
    return [(64, 128), (256, 128), (512, 128), (1024, 128), (1024, 512), (4096, 128)]


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Time fwd+bwd of ours, the PML peer and the per-anchor loop for each (B, D)."""
    threads = int(os.environ.get("PAPERZOO_BENCH_THREADS", "1"))
    with torch_threads(threads):
        return _race(ctx, threads)


def _race(ctx: BenchContext, threads: int) -> list[BenchRow]:
    have_pml = importlib.util.find_spec("pytorch_metric_learning") is not None
    if not have_pml:
        log.warning("pytorch-metric-learning is not installed: the peer is not raced")
    rows: list[BenchRow] = []
    device = ctx.device
    min_run = 0.3 if ctx.quick else 0.6
    for b, d in _cases(ctx.quick):
        g = torch.Generator().manual_seed(b * 7 + d)
        e = torch.randn(b, d, generator=g).to(device).requires_grad_(True)
        y = torch.randint(0, max(2, b // 8), (b,), generator=g).to(device)
        impls: dict[str, Callable[[], object]] = {
            "ours": partial(_ours_step, MultiSimilarityLoss(), e, y)
        }
        if have_pml:
            from pytorch_metric_learning import losses, miners

            impls["pml"] = partial(
                _pml_step, losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(0.1), e, y
            )
        if b <= 1024:
            impls["official-loop"] = partial(_loop_step, e, y)
        case = f"ms+mining fwd+bwd B={b} D={d} {device.type} fp32 threads={threads}"
        rows += compare(case, impls, ours="ours", device=device, min_run_time=min_run)
        log.info("%s: %s", case, {r.impl: round(r.ratio, 2) for r in rows[-len(impls) :]})
    return rows


BENCHMARK = Benchmark(
    name="metric-losses",
    description="MS loss + mining fwd+bwd: ours vs pytorch-metric-learning vs a per-anchor loop",
    run=run_bench,
)
