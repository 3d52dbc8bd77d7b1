"""Benchmark (spec section 7): AnyLoss forward + backward against BCE and the peer's soft F1.

Each case times, in this process and in interleaved rounds, the loss and its gradient with
respect to ``B`` float32 logits (``torch.autograd.grad``, no optimizer). ``ratio`` = that impl's
median over ours (``anyloss`` F1 with ``validate=False``): above 1, ours is faster; for the BCE
baseline, AnyLoss costs ``1 / ratio`` times BCE. The peer, ``pytorch-optimizer``'s
``SoftF1Loss`` (a soft F-beta without the approximation function), is raced when the ``bench``
dependency group is installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.anyloss.losses import anyloss
from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads

__all__ = ["BENCHMARK", "OURS", "run_bench"]

OURS = "anyloss F1, validate=False (ours)"
"""The impl every ratio is relative to."""


def _try_peer() -> Any:
    try:
        return importlib.import_module("pytorch_optimizer").SoftF1Loss()
    except (ImportError, AttributeError):  # the bench dependency group is not installed
        return None


def _impls(batch: int, device: torch.device) -> dict[str, Callable[[], object]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, generator=g).to(device).requires_grad_(True)
    y = (torch.rand(batch, generator=g) < 0.1).float().to(device)
    y[:2] = torch.tensor([0.0, 1.0], device=device)

    def grad_of(loss_fn: Callable[[Tensor], Tensor]) -> Callable[[], object]:
        return lambda: torch.autograd.grad(loss_fn(x), x)

    impls: dict[str, Callable[[], object]] = {
        OURS: grad_of(lambda t: anyloss(t, y, "f1", validate=False)),
        "BCE with logits (baseline)": grad_of(lambda t: F.binary_cross_entropy_with_logits(t, y)),
        "anyloss F1, validate=True": grad_of(lambda t: anyloss(t, y, "f1")),
        "anyloss G-mean, validate=False": grad_of(lambda t: anyloss(t, y, "gmean", validate=False)),
        "anyloss G-mean, validate=True": grad_of(lambda t: anyloss(t, y, "gmean")),
        "anyloss accuracy, validate=False": grad_of(
            lambda t: anyloss(t, y, "accuracy", validate=False)
        ),
    }
    peer = _try_peer()
    if peer is not None:
        impls["pytorch-optimizer SoftF1Loss on sigmoid (peer, no A)"] = grad_of(
            lambda t: peer(torch.sigmoid(t), y)
        )
    return impls


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """``B`` = 1e3, 1e5, 1e6 (``quick``: 1e3, 1e5); CPU timings with one torch thread."""
    sizes = (1_000, 100_000) if ctx.quick else (1_000, 100_000, 1_000_000)
    rows: list[BenchRow] = []
    for b in sizes:
        rows += compare(
            f"loss fwd+bwd, B={b:,}, float32",
            _impls(b, ctx.device),
            ours=OURS,
            device=ctx.device,
            min_run_time=0.5 if ctx.quick else 1.5,
        )
    return rows


BENCHMARK = Benchmark(
    name="anyloss",
    description="AnyLoss fwd+bwd vs BCE with logits and pytorch-optimizer's SoftF1Loss, B = 1e3..1e6",
    run=run_bench,
)
