"""Benchmarks: timing, peak memory, same-run ratios, and the registry (group ``paperzoo.benchmarks``).

Benchmarks are not tests: they report ratios against a baseline or peer measured in the same process
and run; ``paperzoo bench NAME`` runs one and writes ``bench.json``.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

import torch
from torch import nn

from paperzoo.core.checks import UserError

__all__ = [
    "BENCHMARK",
    "BenchContext",
    "BenchRow",
    "Benchmark",
    "compare",
    "get_benchmark",
    "list_benchmarks",
    "peak_memory",
    "time_function",
]


@dataclass(frozen=True)
class BenchRow:
    """One measurement. ``ratio`` = this impl's median over ours in the same run (>1: we are faster).

    ``threads`` is the torch intra-op thread count while it was timed (benchmarks often pin it to
    one, so the process-wide count in the report's environment block is not enough); -1 = unknown.
    """

    case: str
    impl: str
    median_s: float
    peak_bytes: int | None
    ratio: float
    threads: int = -1


@dataclass(frozen=True)
class BenchContext:
    """Where a benchmark runs; ``quick`` asks for fewer cases and shorter timings."""

    device: torch.device
    quick: bool = False


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: ``run(ctx) -> list[BenchRow]``."""

    name: str
    description: str
    run: Callable[[BenchContext], list[BenchRow]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_function(
    fn: Callable[[], object], *, min_run_time: float = 0.5, device: torch.device | None = None
) -> float:
    """Median seconds per call of ``fn`` (``torch.utils.benchmark``, after one warm-up call)."""
    from torch.utils import benchmark as tb

    fn()
    if device is not None:
        _sync(device)
    timer = tb.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return float(m.median)


def peak_memory(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak bytes allocated by torch during one call of ``fn``, above what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the torch profiler's per-op self allocations
    (allocations positive, frees negative), replayed in time order; their running-sum maximum.
    """
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    if device.type != "cpu":
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # self (not inclusive) usage: an op's allocations are counted once, not again in each parent op
    events = [e for e in prof.events() if getattr(e, "self_cpu_memory_usage", 0)]
    events.sort(key=lambda e: e.time_range.start)
    run = peak = 0
    for e in events:
        run += int(e.self_cpu_memory_usage)
        peak = max(peak, run)
    return peak


def compare(
    case: str,
    impls: Mapping[str, Callable[[], object]],
    *,
    ours: str,
    device: torch.device,
    min_run_time: float = 0.5,
    memory: bool = True,
    rounds: int = 7,
) -> list[BenchRow]:
    """Time every impl of one case in this run; each row's ratio is its median over ``ours``'.

    The impls are timed in interleaved rounds (``torch.utils.benchmark.Timer.timeit``; each round
    runs every impl once for about ``min_run_time / rounds`` seconds), so a change in machine load
    during the run hits all of them alike; the median over rounds is reported.
    """
    from torch.utils import benchmark as tb

    if ours not in impls:
        raise ValueError(f"ours: {ours!r} is not one of the impls {list(impls)}")
    if rounds < 1:
        raise ValueError(f"rounds: expected a positive int, got {rounds}")
    timers = {
        k: tb.Timer(stmt="fn()", globals={"fn": f}, num_threads=torch.get_num_threads())
        for k, f in impls.items()
    }
    number: dict[str, int] = {}
    for k, f in impls.items():
        f()  # warm-up (compilation, caches)
        _sync(device)
        one = timers[k].timeit(1).mean
        number[k] = max(1, int(min_run_time / rounds / max(one, 1e-9)))
    samples: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(rounds):
        for k in impls:
            samples[k].append(float(timers[k].timeit(number[k]).mean))
            _sync(device)
    med = {k: statistics.median(v) for k, v in samples.items()}
    mem = {k: (peak_memory(f, device) if memory else None) for k, f in impls.items()}
    nt = torch.get_num_threads()
    return [BenchRow(case, k, med[k], mem[k], med[k] / med[ours], nt) for k in impls]


def list_benchmarks() -> dict[str, str]:
    """``{name: 'module:attr'}`` of every installed benchmark."""
    return {ep.name: ep.value for ep in entry_points(group="paperzoo.benchmarks")}


def get_benchmark(name: str) -> Benchmark:
    """Load a registered benchmark; :class:`UserError` listing the known names otherwise."""
    eps = {ep.name: ep for ep in entry_points(group="paperzoo.benchmarks")}
    if name not in eps:
        raise UserError(
            f"benchmark: unknown name {name!r}; available: {', '.join(sorted(eps)) or 'none'}"
        )
    obj = eps[name].load()
    if not isinstance(obj, Benchmark):
        raise TypeError(f"entry point {name!r} ({eps[name].value}) is not a Benchmark")
    return obj


# --------------------------------------------------------------------------- the core's own benchmark


def _core_bench(ctx: BenchContext) -> list[BenchRow]:
    """``fit``'s overhead against a bare hand-written loop: same MLP, data, optimizer, epochs."""
    from paperzoo.core.data import make_loader
    from paperzoo.core.training import fit

    torch.manual_seed(0)
    n, f, k = 2048, 64, 10
    x, y = torch.randn(n, f), torch.randint(0, k, (n,))
    base = nn.Sequential(
        nn.Linear(f, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, k)
    )
    loss_fn = nn.functional.cross_entropy
    dev = ctx.device

    def bare() -> None:
        model = copy.deepcopy(base).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loader = make_loader(x, y, batch_size=128, shuffle=True, seed=0)
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def with_fit() -> None:
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loader = make_loader(x, y, batch_size=128, shuffle=True, seed=0)
        fit(model, loader, opt, loss_fn=loss_fn, epochs=1, device=dev, progress=False)

    rt = 2.0 if ctx.quick else 6.0
    return compare(
        "mlp 64-256-256-10, 2048 rows, batch 128, 1 epoch",
        {"fit": with_fit, "bare loop": bare},
        ours="fit",
        device=dev,
        min_run_time=rt,
        memory=False,
    )


BENCHMARK = Benchmark(
    name="core", description="fit() overhead against a bare training loop", run=_core_bench
)
