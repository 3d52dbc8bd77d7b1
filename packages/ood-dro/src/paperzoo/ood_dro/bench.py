"""Benchmark (spec section 7): the robust self-training step against a plain ERM step on the
same batch, the cost of the inner ascent per step count, and the closed-form robust loss of a
linear model against the iterative inner ascent.

Every case is timed in this process, interleaved (``paperzoo.core.bench.compare``); ``ratio`` =
that impl's median over ours (> 1: ours is faster; for the ERM baseline < 1 is expected, the
robust step runs ``T_in + 1`` forward/backward passes per term). The peers of the spec
(``skwdro``, ``dro``) are not raced (see the README).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.core.models import mlp
from paperzoo.ood_dro.losses import robust_logistic_linear
from paperzoo.ood_dro.robust import WassersteinRobustLoss, robust_surrogate
from paperzoo.ood_dro.rss import RSSObjective

__all__ = ["BENCHMARK", "run_bench"]


def _steps(batch: int, device: torch.device) -> dict[str, Callable[[], object]]:
    """One optimizer step of each method on the same labeled + unlabeled batch (MLP 64-128-10)."""
    g = torch.Generator().manual_seed(0)
    x_l = torch.randn(batch, 64, generator=g).to(device)
    y_l = torch.randint(0, 10, (batch,), generator=g).to(device)
    x_u = torch.randn(batch, 64, generator=g).to(device)
    out: dict[str, Callable[[], object]] = {}

    def make(name: str, lam: float, steps: int) -> None:
        torch.manual_seed(0)
        model = mlp([64, 128, 10]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        obj = RSSObjective(
            model, "ce", gamma=1.0, lam=lam, steps=steps, step_size=0.1, validate=False
        )

        def step() -> None:
            if lam > 0:
                loss = obj(x_l, y_l, x_u)["loss"]
            else:  # plain / WRM labeled-only step (no unlabeled batch)
                loss = robust_surrogate(
                    model, x_l, y_l, "ce", 1.0, steps=steps, step_size=0.1, validate=False
                )[0].mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        out[name] = step

    make("RSS step, T_in=10 (ours)", 1.0, 10)
    make("ERM step, labeled only (baseline)", 0.0, 0)
    make("ERM + self-training step (gamma -> inf)", 1.0, 0)
    make("WRM step, labeled only, T_in=10", 0.0, 10)
    return out


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` shortens the timings. One thread on the CPU (restored after)."""
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        return _cases(ctx)


def _cases(ctx: BenchContext) -> list[BenchRow]:
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rounds = 3 if dev.type == "cpu" else 7
    rows: list[BenchRow] = []
    for batch in (128,) if ctx.quick else (128, 512):
        rows += compare(
            f"train step, MLP 64-128-10, batch {batch} labeled + {batch} unlabeled",
            _steps(batch, dev),
            ours="RSS step, T_in=10 (ours)",
            device=dev,
            min_run_time=rt,
            rounds=rounds,
        )

    # the inner ascent's cost per step count (forward + backward of the robust loss)
    torch.manual_seed(0)
    model = mlp([64, 128, 10]).to(dev)
    x = torch.randn(256, 64, device=dev)
    y = torch.randint(0, 10, (256,), device=dev)
    impls: dict[str, Callable[[], object]] = {}
    for steps in (0, 1, 5, 10, 20):
        loss = WassersteinRobustLoss("ce", 1.0, steps=steps, step_size=0.1, validate=False)

        def f(loss: WassersteinRobustLoss = loss) -> None:
            loss(model, x, y).backward()
            model.zero_grad(set_to_none=True)

        impls[f"T_in={steps}" + (" (ours, reference default)" if steps == 10 else "")] = f
    rows += compare(
        "WassersteinRobustLoss fwd+bwd, MLP 64-128-10, batch 256",
        impls,
        ours="T_in=10 (ours, reference default)",
        device=dev,
        min_run_time=rt,
        rounds=rounds,
    )

    # closed form vs iterative inner ascent for a linear logistic model, d = 200
    d, n = 200, 4096
    lin = nn.Linear(d, 1, bias=False).to(dev)
    xs = torch.randn(n, d, device=dev)
    ys = (torch.randint(0, 2, (n,), device=dev) * 2 - 1).long()
    gamma = 1.0

    def closed() -> None:
        w = lin.weight[0]
        robust_logistic_linear(ys * (xs @ w), w.norm(), gamma, validate=False).mean().backward()
        lin.zero_grad(set_to_none=True)

    def iterative(steps: int, size: float, schedule: str) -> Callable[[], object]:
        def f() -> None:
            phi, _ = robust_surrogate(
                lin,
                xs,
                ys,
                "logistic",
                gamma,
                steps=steps,
                step_size=size,
                schedule=schedule,
                validate=False,
            )
            phi.mean().backward()
            lin.zero_grad(set_to_none=True)

        return f

    rows += compare(
        f"robust logistic loss fwd+bwd, linear d={d}, batch {n}",
        {
            "closed form, Newton in float64 (ours)": closed,
            "inner ascent, reference T_in=10, a=1e-3, 1/t": iterative(10, 1e-3, "1/t"),
            "inner ascent, 100 constant steps (converged)": iterative(100, 0.05, "constant"),
        },
        ours="closed form, Newton in float64 (ours)",
        device=dev,
        min_run_time=rt,
        rounds=rounds,
    )
    return rows


BENCHMARK = Benchmark(
    name="ood-dro",
    description="RSS step vs ERM step; inner-ascent cost per T_in; closed-form vs iterative robust loss",
    run=run_bench,
)
