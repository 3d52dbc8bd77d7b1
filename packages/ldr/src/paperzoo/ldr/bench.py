"""Benchmark: LDR-KL / ALDR-KL forward+backward and a training step, against cross-entropy.

No PyPI package implements LDR or ALDR (LibAUC does not), so the race is against
``F.cross_entropy`` (the baseline) and the other losses of this package (GCE, Crammer-Singer,
Weston-Watkins) in the same process and run. ``ratio`` = that implementation's median time over ours.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.ldr.baselines import gce_loss
from paperzoo.ldr.losses import (
    ALDRKLLoss,
    _aldr_step,
    _checked,
    _ldr_kl_rows,
    crammer_singer_loss,
    ldr_kl_loss,
    weston_watkins_loss,
)

__all__ = ["BENCHMARK", "run_bench"]


def _fwd_bwd(
    loss: Callable[[Tensor, Tensor], Tensor], logits: Tensor, y: Tensor
) -> Callable[[], None]:
    def step() -> None:
        x = logits.detach().requires_grad_(True)
        loss(x, y).backward()

    return step


def _loss_cases(ctx: BenchContext, batch: int, k: int, rt: float, memory: bool) -> list[BenchRow]:
    dev = ctx.device
    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(batch, k, generator=g)).to(dev)
    y = torch.randint(0, k, (batch,), generator=g).to(dev)
    n = 60_000
    idx = torch.randperm(n, generator=g)[:batch].to(dev)
    aldr = ALDRKLLoss(n).to(dev)
    aldr_nv = ALDRKLLoss(n, validate=False).to(dev)

    def ce(f: Tensor, t: Tensor) -> Tensor:
        return F.cross_entropy(f, t)

    def previous_ldr(f: Tensor, t: Tensor) -> Tensor:  # the 0.3 kernel (recomputes in backward)
        logits, index, _ = _checked(f, t, "softplus_mean", "mean", False)
        return _ldr_kl_rows(logits, index, 10.0, 0.1, "softplus_mean", impl="recompute").mean()

    def previous_aldr(f: Tensor, t: Tensor) -> Tensor:  # the 0.3 path, without the table write
        logits, index, _ = _checked(f, t, "l1", "mean", False)
        prev = aldr.lambdas.index_select(0, idx)
        return _aldr_step(logits, index, prev, 10.0, 2.0, 0.1, True, "l1", "recompute").loss.mean()

    rows = compare(
        f"LDR-KL fwd+bwd, B={batch}, K={k}",
        {
            "LDR-KL (ours)": _fwd_bwd(ldr_kl_loss, logits, y),
            "LDR-KL validate=False": _fwd_bwd(
                lambda f, t: ldr_kl_loss(f, t, validate=False), logits, y
            ),
            "LDR-KL previous kernel, validate=False": _fwd_bwd(previous_ldr, logits, y),
            "F.cross_entropy": _fwd_bwd(ce, logits, y),
            "GCE": _fwd_bwd(gce_loss, logits, y),
            "Crammer-Singer": _fwd_bwd(crammer_singer_loss, logits, y),
            "Weston-Watkins": _fwd_bwd(weston_watkins_loss, logits, y),
        },
        ours="LDR-KL (ours)",
        device=dev,
        min_run_time=rt,
        memory=memory,
    )
    rows += compare(
        f"ALDR-KL fwd+bwd, B={batch}, K={k}, N={n}",
        {
            "ALDR-KL (ours)": _fwd_bwd(lambda f, t: aldr(f, t, idx), logits, y),
            "ALDR-KL validate=False": _fwd_bwd(lambda f, t: aldr_nv(f, t, idx), logits, y),
            "ALDR-KL previous path, validate=False": _fwd_bwd(previous_aldr, logits, y),
            "F.cross_entropy": _fwd_bwd(ce, logits, y),
        },
        ours="ALDR-KL (ours)",
        device=dev,
        min_run_time=rt,
        memory=memory,
    )
    return rows


def _train_step_cases(ctx: BenchContext, rt: float) -> list[BenchRow]:
    """One SGD step of an MNIST-sized MLP (784-256-256-10) at batch 256."""
    dev = ctx.device
    torch.manual_seed(0)
    n, batch = 60_000, 256
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    ).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(batch, 784, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    idx = torch.randperm(n)[:batch].to(dev)
    aldr = ALDRKLLoss(n).to(dev)

    def step(loss: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        def run() -> None:
            opt.zero_grad(set_to_none=True)
            loss(model(x)).backward()
            opt.step()

        return run

    impls = {
        "ALDR-KL (ours)": step(lambda f: aldr(f, y, idx)),
        "LDR-KL": step(lambda f: ldr_kl_loss(f, y)),
        "F.cross_entropy": step(lambda f: F.cross_entropy(f, y)),
    }
    return compare(
        "training step, MLP 784-256-256-10, B=256",
        impls,
        ours="ALDR-KL (ours)",
        device=dev,
        min_run_time=rt,
        memory=False,
    )


def _floor_cases(ctx: BenchContext, rt: float) -> list[BenchRow]:
    """The single passes that bound LDR-KL's default, against the whole cross-entropy step.

    B = 256, K = 1000: ``F.softplus`` (the ``softplus_mean`` normalisation), ``torch.sigmoid``
    (its derivative), ``torch.softmax`` (the loss and its gradient) and one plain (B, K)
    multiply, each alone, raced with ``F.cross_entropy`` forward + backward.
    """
    dev = ctx.device
    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(256, 1000, generator=g)).to(dev)
    y = torch.randint(0, 1000, (256,), generator=g).to(dev)
    out = torch.empty_like(logits)
    impls: dict[str, Callable[[], object]] = {
        "F.cross_entropy fwd+bwd": _fwd_bwd(F.cross_entropy, logits, y),
        "F.softplus pass": lambda: F.softplus(logits),
        "torch.sigmoid pass": lambda: torch.sigmoid(logits, out=out),
        "torch.softmax pass": lambda: torch.softmax(logits, dim=1),
        "one (B, K) multiply": lambda: torch.mul(logits, 2.0, out=out),
    }
    return compare(
        "floor: single passes, B=256, K=1000",
        impls,
        ours="F.cross_entropy fwd+bwd",
        device=dev,
        min_run_time=rt,
        memory=False,
    )


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Loss forward+backward for K in {10, 1000, 100000} (quick: 10, 1000), a training step and
    the single passes that bound the loss (:func:`_floor_cases`)."""
    # one thread on the CPU: on a shared CPU, OpenMP workers spin-waiting for each other dominate
    # the timings of small kernels and make the ratios noise (the count is restored afterwards)
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        rt = 0.2 if ctx.quick else 0.5
        rows: list[BenchRow] = []
        for k in (10, 1000) if ctx.quick else (10, 1000, 100_000):
            rows += _loss_cases(ctx, 256, k, rt, memory=not ctx.quick)
        rows += _train_step_cases(ctx, rt)
        rows += _floor_cases(ctx, rt)
        return rows


BENCHMARK = Benchmark(
    name="ldr",
    description="LDR-KL / ALDR-KL forward+backward and an MLP training step vs F.cross_entropy",
    run=run_bench,
)
