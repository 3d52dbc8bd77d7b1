"""The benchmark (``paperzoo bench zloss``): one training step of a very large output layer.

A step is forward, backward (down to ``h``, as when a body sits below) and the SGD update of the
``D × d`` output layer for a batch of ``m`` examples. Ours is :class:`FactoredZLossHead`; raced in the
same run against a dense ``nn.Linear`` + ``F.cross_entropy`` + ``torch.optim.SGD`` (the baseline), a
dense ``nn.Linear`` + the Z-loss, and ``torch.nn.AdaptiveLogSoftmaxWithLoss`` (torch's built-in
hierarchical-type approximation, standing in for the paper's hierarchical softmax). No PyPI package
implements the factored update (the official code is Theano + C++), so there is no other peer.

Cases: the headline ``D = 200,000, d = 128, m = 256``; the scaling over ``D`` and over ``d``;
``m = 64``; the ``"recompute"`` inverse against Woodbury; the stabilisation overhead at ``P = 10``.
Timed with one torch thread (the runs share a busy 2-core machine: two threads contend).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.zloss.factored import FactoredZLossHead
from paperzoo.zloss.losses import z_loss

__all__ = ["BENCHMARK", "run_bench"]

_LR = 0.01


def _factored_step(
    num_classes: int, dim: int, batch: int, device: torch.device, **kwargs: object
) -> Callable[[], None]:
    reference = bool(kwargs.pop("reference_update", False))
    head = FactoredZLossHead(dim, num_classes, validate=False, device=device, **kwargs)  # type: ignore[arg-type]
    head.layer._reference_update = reference  # True: the 0.1.0 m x m update
    g = torch.Generator().manual_seed(0)
    h = torch.randn(batch, dim, generator=g).to(device).requires_grad_(True)
    t = torch.randint(0, num_classes, (batch,), generator=g).to(device)

    def step() -> None:
        h.grad = None
        head(h, t).backward()
        head.sgd_step(_LR)

    return step


def _dense_step(
    num_classes: int, dim: int, batch: int, device: torch.device, loss: str
) -> Callable[[], None]:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(batch, dim, generator=g).to(device).requires_grad_(True)
    t = torch.randint(0, num_classes, (batch,), generator=g).to(device)
    model: nn.Module
    if loss == "adaptive":
        c1, c2 = max(num_classes // 100, 1), max(num_classes // 10, 2)
        model = nn.AdaptiveLogSoftmaxWithLoss(dim, num_classes, cutoffs=[c1, c2], div_value=4.0)
    else:
        model = nn.Linear(dim, num_classes)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=_LR)

    def objective() -> Tensor:
        if isinstance(model, nn.AdaptiveLogSoftmaxWithLoss):
            out: Tensor = model(h, t).loss
            return out
        if loss == "ce":
            return F.cross_entropy(model(h), t)
        return z_loss(model(h), t, validate=False)

    def step() -> None:
        h.grad = None
        opt.zero_grad(set_to_none=True)
        objective().backward()
        opt.step()

    return step


def _race(
    case: str, num_classes: int, dim: int, batch: int, ctx: BenchContext, *, full: bool, rt: float
) -> list[BenchRow]:
    dev = ctx.device
    impls: dict[str, Callable[[], None]] = {
        "factored z-loss (ours)": _factored_step(num_classes, dim, batch, dev),
        "dense linear + cross-entropy": _dense_step(num_classes, dim, batch, dev, "ce"),
    }
    if full:
        impls["dense linear + z-loss"] = _dense_step(num_classes, dim, batch, dev, "z")
        impls["adaptive log-softmax"] = _dense_step(num_classes, dim, batch, dev, "adaptive")
    return compare(
        case, impls, ours="factored z-loss (ours)", device=dev, min_run_time=rt, memory=full
    )


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` drops the scaling sweeps' larger sizes and shortens the timings."""
    rt = 0.3 if ctx.quick else 1.0
    rows: list[BenchRow] = []
    with torch_threads(1):  # timings on one thread; the previous count comes back after
        # The headline's dense peers take seconds per step, so each round times ours right after
        # them (cold caches); a longer ours block per round measures ours' steady state.
        rows += _race(
            "D=200000 d=128 m=256 (headline)", 200_000, 128, 256, ctx, full=True, rt=3.0 * rt
        )
        sizes_d = (10_000, 50_000) if ctx.quick else (10_000, 50_000, 400_000)
        for num_classes in sizes_d:
            rows += _race(
                f"D={num_classes} d=128 m=256", num_classes, 128, 256, ctx, full=False, rt=rt
            )
        dims = (64, 256) if ctx.quick else (64, 256, 512)
        for dim in dims:
            rows += _race(f"D=50000 d={dim} m=256", 50_000, dim, 256, ctx, full=False, rt=rt)
        rows += _race("D=200000 d=128 m=64", 200_000, 128, 64, ctx, full=False, rt=rt)
        variants: dict[str, Callable[[], None]] = {
            "factored z-loss (ours)": _factored_step(
                200_000, 128, 256, ctx.device, stabilize_every=0
            ),
            "0.1.0 update (m x m form)": _factored_step(
                200_000, 128, 256, ctx.device, stabilize_every=0, reference_update=True
            ),
            "inverse='recompute'": _factored_step(
                200_000, 128, 256, ctx.device, stabilize_every=0, inverse="recompute"
            ),
            "stabilize_every=10": _factored_step(200_000, 128, 256, ctx.device, stabilize_every=10),
            "stabilize_every=100": _factored_step(
                200_000, 128, 256, ctx.device, stabilize_every=100
            ),
        }
        rows += compare(
            "D=200000 d=128 m=256: factored variants (woodbury, no stabilisation = ours)",
            variants,
            ours="factored z-loss (ours)",
            device=ctx.device,
            min_run_time=max(rt, 1.0),
            memory=False,
        )
    return rows


BENCHMARK = Benchmark(
    name="zloss",
    description="one training step of a 200k-class output layer: factored Z-loss head vs dense "
    "nn.Linear + cross-entropy, dense Z-loss and AdaptiveLogSoftmaxWithLoss",
    run=run_bench,
)
