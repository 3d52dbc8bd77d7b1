"""Benchmark: forward + backward time and peak memory of AF-KAN against an MLP, ReLU-KAN, the
in-package B-spline/RBF KANs and the PyPI KAN libraries, all in one run (spec section 7, issue 6).

Every impl runs one training step (``zero_grad``, forward, ``sum().backward()``) on the same input.
``ratio`` is the impl's median time over AF-KAN's (``af-kan (fused)``: the default layer, which
takes the fused basis path) in the same case: above 1 means AF-KAN is faster. AF-KAN also runs
on its general path (``fused=False``: autograd through the ``(N, n, d)`` basis tensors) and, in
the main case, fused under ``torch.compile`` (compilation excluded: one warm-up call). The MLPs:
the same widths (784-64-10, 50,890 parameters) and the width whose parameter count is closest to
AF-KAN's (784-66-10, 52,480 vs 52,552). Peers: ``pykan`` (``kan.KANLayer`` stack), ``flashkan``
and ``inkan`` (``KANNetwork``, their default ``torch.compile``-d basis); each is skipped, with a
log line, when not installed (they live in the ``bench`` dependency group). ``torchkan`` 0.1.1 is
not raced: its wheel holds only ``dist-info`` (an empty ``top_level.txt``), no module to import.
Threads are set to 1 for stable timings on a shared machine.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from paperzoo.core.bench import BenchContext, Benchmark, BenchRow, compare
from paperzoo.core.devices import torch_threads
from paperzoo.core.models import count_parameters

from .fused import silu_quad1_sums
from .layers import AFKANLayer
from .models import AFKAN, MLP, RBFKAN, BSplineKAN, ReLUKAN

__all__ = ["BENCHMARK", "equal_params_width", "run_bench"]

EAGER_PASSES = 285
"""Ops over ``(N, d)`` tensors (allocations excluded) of the eager fused Function for one forward
+ backward at ``n = 6``: per bump 16 forward and 30 backward, plus 9 outside the bump loops (the
negation and two exponentials, five accumulator fills, the final ``ḡ_x`` scaling); counted by
``tests/test_bench.py``."""

log = logging.getLogger("paperzoo.af_kan.bench")


class _PykanStack(nn.Module):
    """``pykan``'s ``KANLayer`` chained (its forward returns a tuple; keep the output)."""

    def __init__(self, widths: Sequence[int], grid_size: int, order: int) -> None:
        super().__init__()
        from kan.KANLayer import KANLayer

        self.layers = nn.ModuleList(
            KANLayer(i, o, num=grid_size, k=order, device="cpu")
            for i, o in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)[0]
        return x


def _peer(name: str, widths: list[int], grid_size: int, order: int) -> nn.Module | None:
    try:
        if name == "pykan":
            return _PykanStack(widths, grid_size, order)
        if name == "flashkan":
            import flashkan

            return flashkan.KANNetwork(widths, grid_size=grid_size, spline_order=order)  # type: ignore[no-any-return]
        if name == "inkan":
            import inkan

            return inkan.KANNetwork(widths, grid_size=grid_size, spline_order=order)  # type: ignore[no-any-return]
    except ImportError as err:
        log.warning("peer %s not raced: %s (install the 'bench' dependency group)", name, err)
        return None
    raise ValueError(f"unknown peer {name!r}")


def _step(model: nn.Module, x: Tensor) -> Callable[[], object]:
    def fn() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    return fn


def equal_params_width(widths: Sequence[int], target: int) -> int:
    """Hidden width ``h`` of an MLP ``widths[0]-h-widths[-1]`` whose parameter count is closest to
    ``target`` (ties: the smaller width)."""
    first, last = widths[0], widths[-1]
    best = min(
        range(1, 4 * target // (first + last) + 2),
        key=lambda h: abs(count_parameters(MLP([first, h, last])) - target),
    )
    return int(best)


def _case(
    case: str,
    widths: list[int],
    batch: int,
    grid_size: int,
    order: int,
    device: torch.device,
    *,
    peers: Sequence[str],
    compiled: bool,
    min_run_time: float,
) -> list[BenchRow]:
    torch.manual_seed(0)
    x = (torch.rand(batch, widths[0]) * 2 - 1).to(device)
    kw = {"grid_size": grid_size, "order": order, "validate": False}
    af_kan = AFKAN(widths, **kw)
    models: dict[str, nn.Module] = {
        "af-kan (fused)": af_kan,
        "af-kan (general path)": AFKAN(widths, fused=False, **kw),
    }
    if compiled:
        models["af-kan (fused, torch.compile)"] = torch.compile(  # type: ignore[assignment]
            AFKAN(widths, **kw)
        )
    models["mlp (same widths)"] = MLP(widths, validate=False)
    if len(widths) == 3:
        h = equal_params_width(widths, count_parameters(af_kan))
        models[f"mlp (equal parameters, {widths[0]}-{h}-{widths[-1]})"] = MLP(
            [widths[0], h, widths[-1]], validate=False
        )
    models["relu-kan"] = ReLUKAN(widths, **kw)
    models["b-spline kan (in-package)"] = BSplineKAN(widths, **kw)
    models["rbf kan (in-package)"] = RBFKAN(widths, num_grids=grid_size + order, validate=False)
    for name in peers:
        peer = _peer(name, widths, grid_size, order)
        if peer is not None:
            models[name] = peer
    for name, model in models.items():
        model.to(device)
        log.info("%s: %s, %d parameters", case, name, count_parameters(model))
    impls = {name: _step(model, x) for name, model in models.items()}
    return compare(case, impls, ours="af-kan (fused)", device=device, min_run_time=min_run_time)


def _floor_case(case: str, batch: int, device: torch.device, min_run_time: float) -> list[BenchRow]:
    """Where the time goes at 784-64-10: the equal-parameter MLP's whole training step against
    compiled pieces of AF-KAN's first-layer basis alone (``ratio`` = multiples of the MLP step).

    * ``one division per basis element``: ``Σ_j 1/(1 + e^{-x} c_j)`` over ``(N, n, d)``, forward
      only: the cheapest pass any SiLU-bump basis needs (the fused basis needs 2 per element
      forward and 2 more backward, plus ~40 multiply-adds);
    * the fused basis sums (:func:`~paperzoo.af_kan.fused.silu_quad1_sums`: ``Σ_j F``,
      ``Σ_j a_j F``, min/max) forward, and forward + backward, compiled and eager (the eager
      Function is what the default layer runs);
    * ``eager: 285 elementwise passes``: the eager Function's op count (:data:`EAGER_PASSES`),
      each an in-place multiply over one of ten ``(N, d)`` buffers in turn (the
      loop's working set): what eager PyTorch costs for that many passes, whatever they compute.
    """
    torch.manual_seed(0)
    widths = [784, 64, 10]
    x = (torch.rand(batch, widths[0]) * 2 - 1).to(device)
    layer = AFKAN(widths, validate=False).to(device).layers[0]
    assert isinstance(layer, AFKANLayer)
    start, end = layer.start.detach(), layer.end.detach()
    a = torch.randn(layer.num_bumps, device=device)
    coef = start.exp()
    h = equal_params_width(widths, count_parameters(AFKAN(widths)))
    mlp = MLP([widths[0], h, widths[-1]], validate=False).to(device)

    def one_division(x: Tensor) -> Tensor:
        return (1 / (1 + torch.exp(-x).unsqueeze(1) * coef[:, None])).sum(1)

    def basis(x: Tensor) -> tuple[Tensor, Tensor]:
        f_sum, f_proj, _, _ = silu_quad1_sums(x, start, end, a)
        return f_sum, f_proj

    c_div = torch.compile(one_division)
    c_basis = torch.compile(basis)
    x_req = x.clone().requires_grad_(True)

    def basis_step() -> None:
        x_req.grad = None
        f_sum, f_proj = c_basis(x_req)
        (f_sum.sum() + f_proj.sum()).backward()

    def eager_basis_step() -> None:
        x_req.grad = None
        f_sum, f_proj = basis(x_req)
        (f_sum.sum() + f_proj.sum()).backward()

    bufs = [torch.rand_like(x) for _ in range(10)]

    def passes() -> None:
        for i in range(EAGER_PASSES):
            bufs[i % 10].mul_(1.0)

    impls: dict[str, Callable[[], object]] = {
        f"mlp (equal parameters, 784-{h}-10): training step": _step(mlp, x),
        "compiled: one division per basis element, forward": lambda: c_div(x),
        "compiled: fused basis sums (layer 1), forward": lambda: c_basis(x),
        "compiled: fused basis sums (layer 1), forward + backward": basis_step,
        "eager: fused basis sums (layer 1), forward": lambda: basis(x),
        "eager: fused basis sums (layer 1), forward + backward": eager_basis_step,
        f"eager: {EAGER_PASSES} elementwise passes over (N, d) (the Function's op count)": passes,
    }
    return compare(case, impls, ours=next(iter(impls)), device=device, min_run_time=min_run_time)


def run_bench(ctx: BenchContext) -> list[BenchRow]:
    """The race of spec section 7 and issue 6 (quick: the issue's case only, 784-64-10 at
    batch 256, with AF-KAN fused / general / compiled, both MLPs, pykan, flashkan, inkan, and the
    cost-floor case)."""
    with torch_threads(1):  # timed on one thread; the count before is restored
        rt = 0.3 if ctx.quick else 1.0
        all_peers = ("pykan", "flashkan", "inkan")
        rows = _case(
            "784-64-10, batch 256, G=3 K=3 (n=6)",
            [784, 64, 10],
            256,
            3,
            3,
            ctx.device,
            peers=all_peers,
            compiled=True,
            min_run_time=rt,
        )
        rows += _floor_case(
            "cost floor: 784-64-10, batch 256 (ratio = multiples of the MLP step)",
            256,
            ctx.device,
            rt,
        )
        if ctx.quick:
            return rows
        rows += _case(
            "784-64-10, batch 64, G=3 K=3 (n=6)",
            [784, 64, 10],
            64,
            3,
            3,
            ctx.device,
            peers=all_peers,
            compiled=False,
            min_run_time=rt,
        )
        rows += _case(
            "784-64-10, batch 1024, G=3 K=3 (n=6)",
            [784, 64, 10],
            1024,
            3,
            3,
            ctx.device,
            peers=("flashkan", "inkan"),  # pykan's (B, in, out) tensors are too big here
            compiled=False,
            min_run_time=rt,
        )
        rows += _case(
            "layer 256->256, batch 1024, G=5 K=3 (n=8)",
            [256, 256],
            1024,
            5,
            3,
            ctx.device,
            peers=("flashkan", "inkan"),
            compiled=False,
            min_run_time=rt,
        )
        rows += _case(
            "layer 1024->64, batch 64, G=8 K=3 (n=11)",
            [1024, 64],
            64,
            8,
            3,
            ctx.device,
            peers=all_peers,
            compiled=False,
            min_run_time=rt,
        )
        return rows


BENCHMARK = Benchmark(
    name="af-kan",
    description="AF-KAN forward+backward vs MLP, ReLU-KAN, B-spline/RBF KANs, pykan, flashkan, inkan",
    run=run_bench,
)
