"""Benchmark (spec section 7): UNPG's step against ArcFace, the official concatenation, and PML.

Each impl runs a training step's loss work: forward and backward (``torch.autograd.grad``)
with respect to ``B`` float32 embeddings ``(B, D)`` and the ``(C, D)`` class weights, with
``validate=False``. Two cases per size, each timed in interleaved rounds in this process:

* ``UNPG``: ours (one shared log-sum-exp over the filtered in-batch negatives) against plain
  ArcFace (the same head, no in-batch negatives: ``1 / ratio - 1`` is UNPG's overhead) and the
  official form that appends the kept negatives to every row (a ``(B, C + M')`` logit matrix).
* ``ArcFace head``: our ArcFace softmax against pytorch-metric-learning's ``ArcFaceLoss``
  (the peer; raced when the ``bench`` dependency group is installed).

``ratio`` = that impl's median over ours; above 1, ours is faster.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.unpg.heads import ArcFaceHead, margin_to_pml_degrees, weight_to_pml
from paperzoo.unpg.loss import unpg_loss

__all__ = ["BENCHMARK", "run_bench"]

UNPG = "UNPG k=1.5, shared log-sum-exp (ours)"
ARCFACE = "ArcFace softmax (ours, no in-batch negatives)"


def _peer(num_classes: int, dim: int) -> Any:
    try:
        losses = importlib.import_module("pytorch_metric_learning.losses")
    except ImportError:  # the bench dependency group is not installed
        return None
    return losses.ArcFaceLoss(num_classes, dim, margin=margin_to_pml_degrees(0.5), scale=64)


def _cases(
    b: int, c: int, d: int, device: torch.device
) -> tuple[dict[str, Callable[[], object]], dict[str, Callable[[], object]]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, generator=g).to(device).requires_grad_(True)
    y = torch.randint(0, c, (b,), generator=g).to(device)
    torch.manual_seed(0)
    head = ArcFaceHead(d, c, validate=False).to(device)

    def step(**kw: Any) -> Callable[[], object]:
        def fn() -> object:
            loss = unpg_loss(x, y, head, scale=64.0, validate=False, **kw)
            return torch.autograd.grad(loss, (x, head.weight))

        return fn

    unpg_impls: dict[str, Callable[[], object]] = {
        UNPG: step(),
        ARCFACE: step(use_ml_negatives=False),
        "UNPG k=1.5, materialised (B, C + M') logits (official form)": step(materialize=True),
    }
    head_impls: dict[str, Callable[[], object]] = {ARCFACE: step(use_ml_negatives=False)}
    peer = _peer(c, d)
    if peer is not None:
        peer = peer.to(device)
        peer.W.data = weight_to_pml(head.weight)

        def pml() -> object:
            return torch.autograd.grad(peer(x, y), (x, peer.W))

        head_impls["pytorch-metric-learning ArcFaceLoss (peer)"] = pml
    return unpg_impls, head_impls


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """``D = 512``: ``(B, C)`` = (512, 1e3), (512, 1e4); ``quick``: (128, 1e3), ``D = 128``.

    CPU timings with one torch thread.
    """
    sizes = [(128, 1_000, 128)] if ctx.quick else [(512, 1_000, 512), (512, 10_000, 512)]
    rows: list[BenchRow] = []
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        for b, c, d in sizes:
            unpg_impls, head_impls = _cases(b, c, d, ctx.device)
            size = f"B={b}, C={c:,}, D={d}, fp32 fwd+bwd"
            t = 0.5 if ctx.quick else 2.0
            rows += compare(
                f"UNPG, {size}", unpg_impls, ours=UNPG, device=ctx.device, min_run_time=t
            )
            rows += compare(
                f"ArcFace head, {size}", head_impls, ours=ARCFACE, device=ctx.device, min_run_time=t
            )
    return rows


BENCHMARK = Benchmark(
    name="unpg",
    description="UNPG step vs ArcFace, the materialised official form, and PML ArcFaceLoss",
    run=run_bench,
)
