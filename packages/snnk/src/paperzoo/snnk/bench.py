"""Benchmark (spec section 7): the SNNK layer against the ``nn.Linear`` + activation it replaces,
the bundled closed-form fit against scikit-learn's ``RidgeCV`` on the same features, the
positive (FAVOR+) feature map against performer-pytorch's ``softmax_kernel`` (peer), and an
adapter training step against Houlsby and LoRA.

Every case is timed in this process and run; ``ratio`` = that impl's median over ours (> 1: ours
is faster). Each case name carries the trainable-parameter counts of what it races.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.core.models import mlp

from .adapters import HoulsbyAdapter, add_adapters, add_lora, add_snnk_adapters
from .bundling import RIDGE_GRID, FullyBundledNetwork, ridge_cv, ridge_fit
from .features import positive_features, prescale_input
from .layers import SNNKLinear, trainable_parameters

__all__ = ["BENCHMARK", "layer_cases", "run_bench"]


def layer_cases(quick: bool, cuda: bool) -> list[tuple[int, int, int]]:
    """``(d = l, m, batch)`` of the layer race (spec: d, l in {256, 768, 3072}, m in {32, 128,
    512}, batch {64, 1024}); a 2-core CPU runs a subset."""
    if cuda:
        return [(d, m, b) for d in (256, 768, 3072) for m in (32, 128, 512) for b in (64, 1024)]
    if quick:
        return [(256, 32, 1024), (768, 32, 1024), (768, 512, 1024), (768, 128, 64)]
    return [(d, m, b) for d in (256, 768) for m in (32, 128, 512) for b in (64, 1024)]


def _layer_race(d: int, m: int, batch: int, dev: torch.device) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    lin = nn.Linear(d, d).to(dev)
    snnk = SNNKLinear.from_linear(lin, "cos", m, validate=False).to(dev)
    x = torch.randn(batch, d, device=dev, requires_grad=True)

    def ours() -> None:
        snnk(x).sum().backward()

    def baseline() -> None:
        torch.cos(lin(x)).sum().backward()

    return {"SNNKLinear cos fwd+bwd (ours)": ours, "nn.Linear + cos fwd+bwd (baseline)": baseline}


def _try(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:  # the bench dependency group is not installed
        return None


def _closed_form_race(quick: bool) -> tuple[str, dict[str, Callable[[], object]]]:
    from sklearn.datasets import make_friedman1
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    X, y = make_friedman1(n_samples=1500, noise=1.0, random_state=0)
    Xt = torch.from_numpy(X)
    Xt = (Xt - Xt.mean(0)) / Xt.std(0)
    m = 256 if quick else 512
    net = FullyBundledNetwork(10, 1, m, depth=2, seed=0).double()
    with torch.no_grad():
        Z = net.features(Xt)
    Y = torch.from_numpy(y).unsqueeze(1)
    Zn, yn = Z.numpy(), y

    def ours() -> None:
        ridge_fit(Z, Y, ridge_cv(Z, Y).ridge)

    impls: dict[str, Callable[[], object]] = {
        "ridge_cv + ridge_fit, 5-fold (ours)": ours,
        "sklearn RidgeCV, same grid, 5-fold (peer)": lambda: RidgeCV(
            alphas=RIDGE_GRID, cv=KFold(5)
        ).fit(Zn, yn),
        "sklearn RidgeCV, same grid, efficient LOO (peer)": lambda: RidgeCV(alphas=RIDGE_GRID).fit(
            Zn, yn
        ),
    }
    return f"closed-form ridge fit with CV on bundled features, n=1500, m={m}, float64", impls


def _features_race(dev: torch.device) -> tuple[str, dict[str, Callable[[], object]]]:
    n, d, m = 4096, 64, 256
    torch.manual_seed(0)
    x = torch.randn(1, 1, n, d, device=dev)
    G = torch.randn(m, d, device=dev)
    impls: dict[str, Callable[[], object]] = {
        "positive_features, prescale d^-1/4 (ours)": lambda: positive_features(
            prescale_input(x, "d^-1/4"), G, validate=False
        )
    }
    pp = _try("performer_pytorch.performer_pytorch")
    if pp is not None:
        impls["performer-pytorch softmax_kernel, query (peer)"] = lambda: pp.softmax_kernel(
            x, projection_matrix=G, is_query=True
        )
    return f"FAVOR+ positive features, {n} tokens, d={d}, m={m}", impls


def _adapter_race(dev: torch.device) -> tuple[str, dict[str, Callable[[], object]]]:
    torch.manual_seed(0)
    x, y = torch.randn(128, 40, device=dev), torch.randint(0, 5, (128,), device=dev)

    def model(kind: str) -> nn.Module:
        net = mlp([40, 256, 256, 5]).to(dev)
        if kind == "snnk":
            add_snnk_adapters(net, ["1", "3"], num_features=16, d_model=256)
        elif kind == "houlsby":
            add_adapters(net, ["1", "3"], lambda n, s: HoulsbyAdapter(256, 16))
        else:
            add_lora(net, ["0", "2"], rank=8)
        return net.to(dev)

    def step(net: nn.Module) -> Callable[[], object]:
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)

        def f() -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()

        return f

    nets = {k: model(k) for k in ("snnk", "houlsby", "lora")}
    counts = {k: trainable_parameters(v) for k, v in nets.items()}
    name = (
        "adapter train step, MLP 40-256-256-5, batch 128 (trainable: SNNK "
        f"{counts['snnk']:,}, Houlsby {counts['houlsby']:,}, LoRA {counts['lora']:,})"
    )
    return name, {
        "cos-SNNK adapters m=16, no bottleneck (ours)": step(nets["snnk"]),
        "Houlsby adapters r=16 (baseline)": step(nets["houlsby"]),
        "LoRA r=8 (baseline)": step(nets["lora"]),
    }


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` keeps fewer layer sizes and shorter timings."""
    # one thread on the CPU (restored afterwards): spin-waiting OpenMP workers on a shared CPU
    # make the ratios of small kernels noise
    with torch_threads(1 if ctx.device.type == "cpu" else None):
        return _run_cases(ctx)


def _run_cases(ctx: BenchContext) -> list[BenchRow]:
    dev = ctx.device
    rt = 0.3 if ctx.quick else 1.0
    rounds = 3 if dev.type == "cpu" else 7
    rows: list[BenchRow] = []
    for d, m, batch in layer_cases(ctx.quick, dev.type == "cuda"):
        case = (
            f"layer d=l={d}, m={m}, batch {batch} (trainable {m * d:,} vs {d * d + d:,}; "
            f"FLOPs 2Bm(d+l) vs 2Bdl: {m * 2 / d:.3g}x)"
        )
        impls = _layer_race(d, m, batch, dev)
        rows += compare(
            case,
            impls,
            ours="SNNKLinear cos fwd+bwd (ours)",
            device=dev,
            min_run_time=rt,
            rounds=rounds,
        )
    for name, impls in (_closed_form_race(ctx.quick), _features_race(dev), _adapter_race(dev)):
        ours = next(k for k in impls if k.endswith("(ours)"))
        rows += compare(name, impls, ours=ours, device=dev, min_run_time=rt, rounds=rounds)
    return rows


BENCHMARK = Benchmark(
    name="snnk",
    description="SNNK layer vs Linear+act; closed form vs sklearn RidgeCV; FAVOR+ vs performer; adapters",
    run=run_bench,
)
