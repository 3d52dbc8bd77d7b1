"""Benchmark (spec section 7): comp-sum losses against ``F.cross_entropy``, the adversarial training
step against TRADES and PGD-AT at equal attack steps, and our PGD against torchattacks' PGD (peer).

Every case is timed in this process and run; ``ratio`` = that impl's median over ours (> 1: ours
is faster). For ``F.cross_entropy`` a ratio below 1 is expected (the comp-sum path computes a
``log_softmax``, a gather and an ``expm1``): our time / CE time = 1 / ratio.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.compsum.attacks import (
    PGD,
    cross_entropy_objective,
    logit_diff_distance,
    trades_kl_objective,
)
from paperzoo.compsum.losses import comp_sum_loss
from paperzoo.compsum.training import AdvCompSumTrainer, PGDATTrainer, TRADESTrainer
from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.core.models import mlp

__all__ = ["BENCHMARK", "run_bench", "softmax_power_gce"]


def softmax_power_gce(logits: Tensor, target: Tensor, q: float) -> Tensor:
    """The common GCE formulation (softmax, gather, ``(1 - p**q) / q``), re-implemented for timing."""
    p = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return ((1 - p**q) / q).mean()


def _fwd_bwd(
    fn: Callable[[Tensor, Tensor], Tensor], logits: Tensor, y: Tensor
) -> Callable[[], None]:
    def f() -> None:
        logits.grad = None
        fn(logits, y).backward()

    return f


def _loss_cases(ctx: BenchContext, rt: float) -> list[BenchRow]:
    dev = ctx.device
    rows: list[BenchRow] = []
    sizes = (10, 1000) if ctx.quick else (10, 1000, 32000)
    for n in sizes:
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(256, n, generator=g).to(dev).requires_grad_(True)
        y = torch.randint(0, n, (256,), generator=g).to(dev)
        impls = {
            "comp_sum_loss tau=1.5 / GCE q=0.5 (ours)": _fwd_bwd(
                lambda h, t: comp_sum_loss(h, t, 1.5, validate=False), logits, y
            ),
            "comp_sum_loss tau=0.5 (ours)": _fwd_bwd(
                lambda h, t: comp_sum_loss(h, t, 0.5, validate=False), logits, y
            ),
            "comp_sum_loss tau=1.5, validate=True (ours)": _fwd_bwd(
                lambda h, t: comp_sum_loss(h, t, 1.5), logits, y
            ),
            "F.cross_entropy (baseline)": _fwd_bwd(F.cross_entropy, logits, y),
            "softmax-gather-pow GCE q=0.5 (common formulation)": _fwd_bwd(
                lambda h, t: softmax_power_gce(h, t, 0.5), logits, y
            ),
        }
        rows += compare(
            f"loss fwd+bwd, B=256, n={n}",
            impls,
            ours="comp_sum_loss tau=1.5 / GCE q=0.5 (ours)",
            device=dev,
            min_run_time=rt,
        )
    return rows


def _train_steps(dev: torch.device, batch: int, steps: int) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    base = mlp([64, 256, 256, 10]).to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 64, generator=g).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)

    def attack(objective: Any, init: str = "normal") -> PGD:
        return PGD(0.1, 0.025, steps, init=init, objective=objective, validate=False)  # type: ignore[arg-type]

    def stepper(kind: str) -> Callable[[], object]:
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        if kind == "acs":
            t: AdvCompSumTrainer | TRADESTrainer | PGDATTrainer = AdvCompSumTrainer(
                model, opt, nu=0.5, attack=attack(logit_diff_distance), validate=False
            )
        elif kind == "trades":
            t = TRADESTrainer(model, opt, attack=attack(trades_kl_objective), validate=False)
        else:
            t = PGDATTrainer(
                model, opt, attack=attack(cross_entropy_objective, "uniform"), validate=False
            )
        return lambda: t.step(x, y)

    return {
        "ADV-COMP-SUM step (ours)": stepper("acs"),
        "TRADES step (baseline)": stepper("trades"),
        "PGD-AT step": stepper("pgd_at"),
    }


def _try_torchattacks() -> Any:
    try:
        return importlib.import_module("torchattacks")
    except ImportError:  # not installed (see the README: it cannot join the workspace lock)
        return None


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` drops n = 32000 and the batch-512 step and times shorter."""
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rows = _loss_cases(ctx, rt)
    batches = (128,) if ctx.quick else (128, 512)
    for batch in batches:
        rows += compare(
            f"adversarial train step, MLP 64-256-256-10, batch {batch}, T=10 attack steps",
            _train_steps(dev, batch, 10),
            ours="ADV-COMP-SUM step (ours)",
            device=dev,
            min_run_time=rt,
            rounds=5,
            memory=False,
        )
    torch.manual_seed(0)
    model: nn.Module = mlp([64, 256, 256, 10]).to(dev).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(512, 64, generator=g).to(dev)
    y = torch.randint(0, 10, (512,), generator=g).to(dev)
    ours = PGD(0.1, 0.01, 20, init="none", objective=cross_entropy_objective, validate=False)
    impls: dict[str, Callable[[], object]] = {"PGD-20 (ours)": lambda: ours.perturb(model, x, y)}
    ta = _try_torchattacks()
    if ta is not None:
        theirs = ta.PGD(model, eps=0.1, alpha=0.01, steps=20, random_start=False)
        impls["torchattacks.PGD (peer)"] = lambda: theirs(x, y)
    rows += compare(
        "PGD-20 CE attack, MLP 64-256-256-10, batch 512",
        impls,
        ours="PGD-20 (ours)",
        device=dev,
        min_run_time=rt,
        memory=False,
    )
    return rows


BENCHMARK = Benchmark(
    name="compsum",
    description="comp-sum losses vs F.cross_entropy; ADV-COMP-SUM step vs TRADES; PGD vs torchattacks",
    run=run_bench,
)
