"""The ``paperzoo`` command: ``list``, ``run``, ``bench``.

User mistakes (an unknown name, a bad ``--set``, a missing file) print one line to stderr and exit
with status 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

import torch

from paperzoo.core.bench import BenchContext, get_benchmark, list_benchmarks
from paperzoo.core.checks import UserError
from paperzoo.core.devices import resolve_device
from paperzoo.core.experiments import get_experiment, list_experiments, run_experiment
from paperzoo.core.report import write_bench, write_result
from paperzoo.core.training import init_distributed, is_distributed, is_main_process

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paperzoo", description="paperzoo reproductions and benchmarks"
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered experiments and benchmarks")
    r = sub.add_parser("run", help="run one experiment (or --all)")
    r.add_argument("name", nargs="?", help="experiment name (see `paperzoo list`)")
    r.add_argument("--all", action="store_true", help="run every registered experiment")
    b = r.add_mutually_exclusive_group()
    b.add_argument("--smoke", dest="budget", action="store_const", const="smoke", help="seconds")
    b.add_argument(
        "--quick", dest="budget", action="store_const", const="quick", help="minutes (default)"
    )
    b.add_argument("--full", dest="budget", action="store_const", const="full", help="paper-sized")
    r.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    r.add_argument("--out", default="runs", help="output folder (default: runs)")
    r.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    r.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="data-parallel processes on this machine (launches torchrun; batch sizes are per process)",
    )
    be = sub.add_parser("bench", help="run one benchmark (or --all)")
    be.add_argument("name", nargs="?")
    be.add_argument("--all", action="store_true")
    be.add_argument("--quick", action="store_true", help="fewer cases, shorter timings")
    be.add_argument("--device", default="auto")
    be.add_argument("--out", default="runs")
    be.add_argument("--threads", type=int, default=None)
    return p


def _names(args: argparse.Namespace, known: dict[str, str], what: str) -> list[str]:
    if args.all:
        if args.name:
            raise UserError(f"{what}: give a name or --all, not both")
        return sorted(known)
    if not args.name:
        raise UserError(f"{what}: give a name (one of: {', '.join(sorted(known))}) or --all")
    return [args.name]


def _threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise UserError(f"--threads: expected a positive int, got {n}")
        torch.set_num_threads(n)


def _launch(nproc: int, argv: Sequence[str]) -> int:
    """Re-run this command under ``torchrun --nproc_per_node=nproc`` (without ``--nproc``)."""
    if nproc < 1:
        raise UserError(f"--nproc: expected an integer >= 1, got {nproc}")
    rest: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    from torch.distributed.run import main as torchrun

    torchrun(["--standalone", f"--nproc_per_node={nproc}", "-m", "paperzoo.core.cli", *rest])
    return 0


def _run(args: argparse.Namespace) -> int:
    names = _names(args, list_experiments(), "run")
    budget = args.budget or "quick"
    distributed = "WORLD_SIZE" in os.environ  # launched by torchrun
    if distributed:
        # one process per rank: gloo on CPU, nccl on CUDA; only rank 0 prints and writes
        backend = "gloo" if args.device == "cpu" else None
        device = init_distributed(backend)
    else:
        device = _device(args.device)
    _threads(args.threads)
    if args.seeds is not None and args.seeds < 1:
        raise UserError(f"--seeds: expected a positive int, got {args.seeds}")
    from paperzoo.core.experiments import RunContext

    failed = 0
    for name in names:
        exp = get_experiment(name)
        config = exp.make_config(budget, args.set)
        n_seeds = args.seeds if args.seeds is not None else exp.seeds.get(budget, 3)
        seeds = list(range(n_seeds))
        ctx = RunContext(
            seeds=seeds, device=device, budget=budget, log=logging.getLogger(f"paperzoo.{name}")
        )
        t0 = time.perf_counter()
        result = run_experiment(exp, config, ctx)
        wall = time.perf_counter() - t0
        if not is_main_process():
            continue
        folder = write_result(
            args.out,
            experiment=name,
            budget=budget,
            device=device,
            seeds=seeds,
            wall_s=wall,
            config=config,
            result=result,
        )
        print((folder / "result.md").read_text())
        print(f"wrote {folder}")
        failed += sum(not c.passed for c in result.checks)
    if failed:
        print(f"{failed} check(s) did not pass (reported in result.json)")
    if distributed and is_distributed():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


def _device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except (ValueError, TypeError) as err:
        raise UserError(str(err)) from None


def _bench(args: argparse.Namespace) -> int:
    names = _names(args, list_benchmarks(), "bench")
    device = _device(args.device)
    _threads(args.threads)
    for name in names:
        b = get_benchmark(name)
        t0 = time.perf_counter()
        rows = b.run(BenchContext(device=device, quick=args.quick))
        folder = write_bench(
            args.out, name=name, device=device, rows=rows, wall_s=time.perf_counter() - t0
        )
        print((folder / "bench.md").read_text())
        print(f"wrote {folder}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paperzoo`` command; returns the exit status.

    Under ``torchrun`` (``WORLD_SIZE`` set) ``paperzoo run`` joins the process group, trains
    data-parallel through the core's parts (distributed samplers, gradients and metrics reduced
    across ranks) and only rank 0 prints and writes results; ``paperzoo run --nproc N ...`` launches
    that for N local processes.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    rank = int(os.environ.get("RANK", "0"))
    level = logging.INFO if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "run" and args.nproc is not None and "WORLD_SIZE" not in os.environ:
            return _launch(args.nproc, argv)
        if args.cmd == "list":
            print("experiments:")
            for n, target in sorted(list_experiments().items()):
                print(f"  {n:<16} {target}")
            print("benchmarks:")
            for n, target in sorted(list_benchmarks().items()):
                print(f"  {n:<16} {target}")
            return 0
        if args.cmd == "run":
            return _run(args)
        return _bench(args)
    except UserError as err:
        print(f"paperzoo: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"paperzoo: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
