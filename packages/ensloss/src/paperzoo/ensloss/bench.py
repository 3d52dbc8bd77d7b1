"""Benchmark (spec section 7): the cost of EnsLoss against BCE per step.

Cases, each timed in this process with ``torch.utils.benchmark`` (``ratio`` = that impl's median
over EnsLoss's; above 1: EnsLoss is faster, so BCE's ratio below 1 is the price of EnsLoss):

- loss forward + backward on ``B`` logits, ``B`` in {128, 1024, 65536}: EnsLoss (ours), torch's
  ``BCEWithLogits``, the hinge loss, and the reference algorithm re-expressed
  (:func:`reference_ensloss`: global RNG, NumPy clip, index assignment; CPU only);
- one training step of the reproduction's TabMLP3 (784 -> 256 x 3 -> 1, batch 128, SGD) with
  EnsLoss vs with BCE: the loss's share of a real step.

There is no peer library (no EnsLoss package on PyPI).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.ensloss.baselines import hinge_loss
from paperzoo.ensloss.experiment import tab_mlp
from paperzoo.ensloss.loss import EnsLoss

__all__ = ["BENCHMARK", "reference_ensloss", "run_bench"]


def reference_ensloss(output: Tensor, target: Tensor) -> Tensor:
    """The official ``ensLoss.forward`` at ``lam = 0`` re-expressed (for timing and as a test
    oracle): 0/1 targets, draws from torch's *global* RNG, a NumPy clip (a host round trip), an
    unstable sort of the margins, the ``1/z`` tail above 1, ``- 1e-6``, the mean of ``g * z``.

    Shapes: ``output`` ``(B,)`` or ``(B, 1)`` and ``target`` the same; returns a scalar. CPU only
    (the reference moves the derivatives to a hard-coded ``"cuda"``; here they stay put).
    """
    y = 2.0 * target - 1.0
    s = output.flatten() * y.flatten()
    n = s.shape[0]
    rd = -torch.exp(torch.randn(n))
    rd = torch.sort(rd).values
    rd = torch.from_numpy(np.maximum(rd.numpy(), -1.0))
    _, ind = torch.sort(s)
    g = torch.zeros(n)
    g[ind] = rd
    s_nd = s.detach()
    pos = s_nd > 1.0
    g[pos] *= 1 / s_nd[pos]
    g = g.detach() - 1e-6
    return (g * s).mean()


def _loss_cases(batch: int, device: torch.device) -> dict[str, Callable[[], object]]:
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, device=device, requires_grad=True)
    t = torch.randint(0, 2, (batch,), device=device)
    tf = t.float()
    ens = EnsLoss(generator=gen, validate=False)

    def ours() -> None:
        ens(x, t).backward()

    def bce() -> None:
        F.binary_cross_entropy_with_logits(x, tf).backward()

    def hinge() -> None:
        hinge_loss(x, t, validate=False).backward()

    cases: dict[str, Callable[[], object]] = {
        "EnsLoss (ours)": ours,
        "BCEWithLogits (baseline)": bce,
        "hinge": hinge,
    }
    if device.type == "cpu":

        def reference() -> None:
            reference_ensloss(x, tf).backward()

        cases["reference algorithm (re-expressed)"] = reference
    return cases


def _step_cases(batch: int, device: torch.device) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    x = torch.rand(batch, 784, device=device)
    t = torch.randint(0, 2, (batch,), device=device)
    tf = t.float()
    ens = EnsLoss(generator=torch.Generator(device=device).manual_seed(0), validate=False)

    def step(loss: Callable[[Tensor], Tensor]) -> Callable[[], object]:
        model = tab_mlp(784, 256, 3).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

        def f() -> None:
            opt.zero_grad(set_to_none=True)
            loss(model(x)[:, 0]).backward()
            opt.step()

        return f

    return {
        "TabMLP3 step with EnsLoss (ours)": step(lambda f: ens(f, t)),
        "TabMLP3 step with BCE (baseline)": step(
            lambda f: F.binary_cross_entropy_with_logits(f, tf)
        ),
    }


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case; ``ctx.quick`` drops B = 65536 and shortens the timings."""
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rows: list[BenchRow] = []
    batches = (128, 1024) if ctx.quick else (128, 1024, 65536)
    for b in batches:
        rows += compare(
            f"loss fwd+bwd, B={b}",
            _loss_cases(b, dev),
            ours="EnsLoss (ours)",
            device=dev,
            min_run_time=rt,
        )
    rows += compare(
        "TabMLP3 (784-256x3-1) SGD step, B=128",
        _step_cases(128, dev),
        ours="TabMLP3 step with EnsLoss (ours)",
        device=dev,
        min_run_time=rt,
    )
    return rows


BENCHMARK = Benchmark(
    name="ensloss",
    description="EnsLoss vs BCE/hinge/reference per loss call (B=128..65536) and per TabMLP3 step",
    run=run_bench,
)
