"""Benchmark (spec section 7): the Poincaré-ball ops, the MLR logits and the Hyp-PC loss against
geoopt's ``PoincareBall`` (peer, from the ``bench`` dependency group) and against official-style
re-implementations; the pseudo-negative sampler against ``MultivariateNormal(μ, σI)``; the Hyp-OC
head step.

Every case is timed in this process; ``ratio`` = that impl's median over ours (> 1: ours faster).
"Ours" runs with ``check=False`` (no host sync, the hot-path setting); the default ``check=True``
row shows what the input validation costs.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.hyp_oc.layers import hyperbolic_mlr_logits
from paperzoo.hyp_oc.losses import hyp_pc_loss
from paperzoo.hyp_oc.model import HypOC
from paperzoo.hyp_oc.ops import expmap0, mobius_add, poincare_dist, poincare_dist_matrix
from paperzoo.hyp_oc.sampler import PseudoNegativeSampler

__all__ = ["BENCHMARK", "official_style_mlr", "official_style_pc_loss", "run_bench"]


def _geoopt() -> Any:
    try:
        return importlib.import_module("geoopt")
    except ImportError:  # the bench dependency group is not installed
        return None


def _points(n: int, d: int, c: float, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g)
    r = torch.rand(n, 1, generator=g) * 0.9 / math.sqrt(c)
    out: Tensor = u / u.norm(dim=-1, keepdim=True) * r
    return out


def official_style_mlr(z: Tensor, p: Tensor, a: Tensor, c: float) -> Tensor:
    """The official ``_hyperbolic_softmax`` layout (re-implemented for timing): a ``(K, N, d)``
    batch of Möbius sums with the +1e-5 denominator, ``(N, K)`` logits."""
    xy = -p @ z.mT  # (K, N)
    x2 = p.pow(2).sum(-1, keepdim=True)
    y2 = z.pow(2).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2.mT).unsqueeze(2) * (-p).unsqueeze(1)
    num = num + (1 - c * x2).unsqueeze(2) * z
    den = 1 + 2 * c * xy + c**2 * x2 * y2.mT
    m = num / (den.unsqueeze(2) + 1e-5)  # (K, N, d)
    lam = 2 / (1 - c * x2.squeeze(1))
    an = a.norm(dim=1)
    k = lam * an / math.sqrt(c)
    arg = 2 * math.sqrt(c) * (m * a.unsqueeze(1)).sum(-1)
    arg = arg / (an.unsqueeze(1) * (1 - c * m.pow(2).sum(-1)))
    out: Tensor = (k.unsqueeze(1) * torch.asinh(arg)).mT
    return out


def official_style_pc_loss(z: Tensor, c: float) -> Tensor:
    """The official ``TPC_loss_hyp`` layout (re-implemented for timing): a Python loop over the
    pairs, one Möbius sum each (atan distance)."""
    b = z.shape[0]
    sc = math.sqrt(c)
    total = z.new_zeros(())
    for x, y in zip(z[: b // 2], z[b // 2 :], strict=True):
        m = mobius_add(-x, y, c, mobius_eps=1e-5, check=False).norm()
        total = total + 2 * torch.atan(sc * m) / sc
    out: Tensor = total / b
    return out


def _op_impls(
    x: Tensor, y: Tensor, u: Tensor, c: float, ball: Any
) -> dict[str, dict[str, Callable[[], object]]]:
    ops: dict[str, dict[str, Callable[[], object]]] = {
        "mobius_add": {
            "ours": lambda: mobius_add(x, y, c, check=False),
            "ours, check=True": lambda: mobius_add(x, y, c),
        },
        "expmap0": {"ours": lambda: expmap0(u, c)},
        "dist": {
            "ours": lambda: poincare_dist(x, y, c, check=False),
            "ours, check=True": lambda: poincare_dist(x, y, c),
        },
    }
    if ball is not None:
        ops["mobius_add"]["geoopt (peer)"] = lambda: ball.mobius_add(x, y)
        ops["expmap0"]["geoopt (peer)"] = lambda: ball.expmap0(u)
        ops["dist"]["geoopt (peer)"] = lambda: ball.dist(x, y)
    return ops


def _dist_matrix_impls(
    xm: Tensor, ym: Tensor, c: float, ball: Any
) -> dict[str, Callable[[], object]]:
    impls: dict[str, Callable[[], object]] = {
        "ours (inner-product form)": lambda: poincare_dist_matrix(xm, ym, c, check=False),
        "broadcast (N, M, d) form": lambda: poincare_dist(
            xm.unsqueeze(1), ym.unsqueeze(0), c, check=False
        ),
    }
    if ball is not None:
        impls["geoopt (peer)"] = lambda: ball.dist(xm.unsqueeze(1), ym.unsqueeze(0))
    return impls


def _ball(c: float, dev: torch.device) -> Any:
    geo = _geoopt()
    return None if geo is None else geo.PoincareBall(c=c).to(dev)


def _ops_cases(dev: torch.device, quick: bool, rt: float) -> list[BenchRow]:
    c = 0.1
    ball = _ball(c, dev)
    rows: list[BenchRow] = []
    n, m = 4096, 256
    for d in (2, 128) if quick else (2, 128, 512):
        x, y = _points(n, d, c, 0).to(dev), _points(n, d, c, 1).to(dev)
        u = torch.randn(n, d, device=dev)
        for name, impls in _op_impls(x, y, u, c, ball).items():
            rows += compare(
                f"{name}, N={n}, d={d}, float32", impls, ours="ours", device=dev, min_run_time=rt
            )
        rows += compare(
            f"dist_matrix, {m}x{m}, d={d}, float32",
            _dist_matrix_impls(x[:m], y[:m], c, ball),
            ours="ours (inner-product form)",
            device=dev,
            min_run_time=rt,
        )
    return rows


def _mlr_impls(
    z: Tensor, p: Tensor, a: Tensor, c: float, ball: Any
) -> dict[str, Callable[[], object]]:
    impls: dict[str, Callable[[], object]] = {
        "ours": lambda: hyperbolic_mlr_logits(z, p, a, c),
        "official-style (K, N, d) batch": lambda: official_style_mlr(z, p, a, c),
    }
    if ball is not None:
        lam = 2 / (1 - c * p.pow(2).sum(-1))

        def geo_mlr() -> object:
            dd = ball.dist2plane(z.unsqueeze(1), p.unsqueeze(0), a.unsqueeze(0), signed=True)
            return lam * a.norm(dim=-1) * dd

        impls["geoopt dist2plane (peer)"] = geo_mlr
    return impls


def _mlr_and_pc_cases(dev: torch.device, rt: float) -> list[BenchRow]:
    c, d = 0.1, 128
    ball = _ball(c, dev)
    rows: list[BenchRow] = []
    for b, k in ((512, 2), (512, 100)):
        z = _points(b, d, c, 2).to(dev)
        p = _points(k, d, c, 3).to(dev) * 0.5
        a = torch.randn(k, d, device=dev)
        rows += compare(
            f"MLR logits, B={b}, K={k}, d={d}",
            _mlr_impls(z, p, a, c, ball),
            ours="ours",
            device=dev,
            min_run_time=rt,
        )
    zz = _points(512, d, c, 4).to(dev).requires_grad_(True)

    def ours_pc() -> None:
        hyp_pc_loss(zz, c, validate=False).backward()

    def official_pc() -> None:
        official_style_pc_loss(zz, c).backward()

    pc: dict[str, Callable[[], object]] = {
        "ours": ours_pc,
        "official-style per-pair loop": official_pc,
    }
    if ball is not None:

        def geo_pc() -> None:
            (ball.dist(zz[:256], zz[256:]).sum() / 512).backward()

        pc["geoopt dist (peer)"] = geo_pc
    rows += compare(
        f"Hyp-PC loss fwd+bwd, B=512, d={d}", pc, ours="ours", device=dev, min_run_time=rt
    )
    return rows


def _sampler_impls(f: int, dev: torch.device) -> dict[str, Callable[[], object]]:
    s = PseudoNegativeSampler(f).to(dev)
    h = torch.randn(64, f, device=dev)

    def ours() -> object:
        s.update(h, validate=False)
        return s.sample(64)

    def official() -> object:
        eye = torch.eye(f, device=dev)
        return torch.distributions.MultivariateNormal(h.mean(0), 1.0 * eye).sample((64,))

    return {"ours (mu + sigma randn)": ours, "official MultivariateNormal(mu, sigma I)": official}


def _head_step(b: int, f: int, geometry: str, dev: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    model = HypOC(
        f,
        hidden=(512, 128),
        ball_dim=128,
        pc_weight=0.1,
        geometry=geometry,  # type: ignore[arg-type]
        validate=False,
    ).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    h = torch.randn(b, f, device=dev)

    def step() -> None:
        loss, _ = model.training_step(h)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _sampler_and_step_cases(dev: torch.device, quick: bool, rt: float) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for f in (256,) if quick else (256, 1024):
        rows += compare(
            f"pseudo-negative sampling, B=64, F={f}",
            _sampler_impls(f, dev),
            ours="ours (mu + sigma randn)",
            device=dev,
            min_run_time=rt,
        )
    cases = [(8, 256), (64, 256), (512, 256)] + ([] if quick else [(64, 4096)])
    for b, f in cases:
        rows += compare(
            f"Hyp-OC head step, B={b} (+{b} pseudo), F={f}",
            {
                "Hyp-OC (ours)": _head_step(b, f, "hyperbolic", dev),
                "Euclidean twin": _head_step(b, f, "euclidean", dev),
            },
            ours="Hyp-OC (ours)",
            device=dev,
            min_run_time=rt,
            memory=False,
        )
    return rows


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """Every case with one torch thread (the count is restored afterwards)."""
    with torch_threads(1):
        return _run_bench(ctx)


def _run_bench(ctx: BenchContext) -> list[BenchRow]:
    """All cases; ``ctx.quick`` drops d = 512, F = 1024/4096 and shortens the timings."""
    dev = ctx.device
    rt = 0.2 if ctx.quick else 0.6
    return (
        _ops_cases(dev, ctx.quick, rt)
        + _mlr_and_pc_cases(dev, rt)
        + _sampler_and_step_cases(dev, ctx.quick, rt)
    )


BENCHMARK = Benchmark(
    name="hyp-oc",
    description="Poincaré-ball ops, MLR, Hyp-PC vs geoopt and official-style code; sampler; head",
    run=run_bench,
)
