"""Reproduction (spec §6): search, derive, retrain and test on mnist1d for DARTS-1st, DARTS-2nd, RARTS and a random
architecture; search wall-clock and test accuracy per method over seeds.

``paperzoo run rarts --quick`` (3 seeds) / ``--smoke`` / ``--full``. The quick budget is scaled to ~5 minutes on
2 CPU cores: 768 rows, 2 intermediate nodes per cell, 4 search epochs and a C=8, 3-cell network retrained for
6 epochs instead of the spec's 4000 rows / 3 nodes / 15 epochs / C=16, 5 cells, 30 epochs, and an architecture
learning rate of 3e-3 instead of DARTS' 3e-4 so that α moves at all within ~25 search steps (all three methods
get the same budget and the same settings). ``--full`` uses the spec's sizes and DARTS' rates.

At paper scale, ``--set data_root=DIR`` searches on ``real_dataset`` (CIFAR-10's binary version by
default, read by ``paperzoo.core.datasets``; pixels in [0, 1]) in DARTS' 2-D space with its eight
primitives instead of the 1-D mnist1d space; the search / retrain sizes stay the config's (see the
README for the paper's 8-cell search and 20-cell, 600-epoch evaluation).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from paperzoo.core.checks import (
    check_choice,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.data import make_loader
from paperzoo.core.datasets import load_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import count_parameters
from paperzoo.core.training import fit
from paperzoo.rarts.darts import DartsFirstOrder, DartsSecondOrder
from paperzoo.rarts.loop import run_search
from paperzoo.rarts.ops import DARTS_PRIMITIVES, MNIST1D_PRIMITIVES
from paperzoo.rarts.search import RARTS
from paperzoo.rarts.space import EvalNetwork, Genotype, SearchNetwork, random_genotype
from paperzoo.rarts.stepper import SearchStepper

__all__ = ["EXPERIMENT", "RartsConfig", "run"]

logger = logging.getLogger(__name__)

METHODS = {"darts1": "DARTS-1st", "darts2": "DARTS-2nd", "rarts": "RARTS", "random": "random arch"}


@dataclass(frozen=True)
class RartsConfig:
    """Config of the ``rarts`` reproduction (defaults: the spec's full run; budgets override)."""

    dataset: str = "mnist1d"
    data_root: str = ""  # a folder with the paper's data set: real_dataset replaces dataset
    real_dataset: str = "cifar10"
    n_train: int = 4000  # training rows used (search splits them 50/50 into D_train / D_val)
    search_channels: int = 8
    search_layers: int = 3  # N-R-N
    search_nodes: int = 3
    search_epochs: int = 15
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    lam: float = 1.0
    beta: float = 1.0
    alpha_grad: str = "lagged"
    eval_channels: int = 16
    eval_layers: int = 5
    eval_epochs: int = 30
    eval_lr: float = 0.025
    methods: tuple[str, ...] = ("darts1", "darts2", "rarts", "random")
    threads: int | None = 1  # scoped by the run (paperzoo.core.experiments.run_experiment)

    def __post_init__(self) -> None:
        for name in (
            "n_train",
            "search_channels",
            "search_layers",
            "search_nodes",
            "search_epochs",
            "batch_size",
            "eval_channels",
            "eval_layers",
            "eval_epochs",
        ):
            check_positive_int(name, getattr(self, name))
        for name in ("w_lr", "grad_clip", "arch_lr", "lam", "eval_lr"):
            check_positive(name, getattr(self, name))
        for name in ("w_lr_min", "weight_decay", "arch_weight_decay", "beta"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_unit_interval("momentum", self.momentum)
        check_choice("alpha_grad", self.alpha_grad, ("lagged", "exact"))
        check_choice("real_dataset", self.real_dataset, ("cifar10", "cifar100"))
        if not self.methods:
            raise ValueError(f"methods: expected one or more of {sorted(METHODS)}, got ()")
        for m in self.methods:
            check_choice("methods", m, list(METHODS))
        if self.threads is not None:
            check_positive_int("threads", self.threads)


def _data(config: RartsConfig, seed: int) -> tuple[torch.Tensor, ...]:
    split = load_split(
        config.dataset, data_root=config.data_root, real_dataset=config.real_dataset,
        seed=seed, val_fraction=0.0, test_fraction=0.2,
    )  # fmt: skip
    n = min(config.n_train, split.x_train.shape[0])
    # mnist1d: (N, 1, 40) signals; the real data sets: (N, C, H, W) images
    shape = (1, *split.input_shape) if len(split.input_shape) == 1 else split.input_shape
    return (
        split.x_train[:n].reshape(-1, *shape),
        split.y_train[:n],
        split.x_test.reshape(-1, *shape),
        split.y_test,
        torch.tensor(split.num_classes),
    )


def _space(x: torch.Tensor) -> tuple[int, int, tuple[str, ...]]:
    """``(in_channels, dims, primitives)`` of the search space for inputs ``x`` ``(N, C, *S)``."""
    if x.dim() == 4:
        return int(x.shape[1]), 2, DARTS_PRIMITIVES
    return int(x.shape[1]), 1, MNIST1D_PRIMITIVES


def _stepper(method: str, net: SearchNetwork, config: RartsConfig) -> SearchStepper:
    def w_opt(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params, lr=config.w_lr, momentum=config.momentum, weight_decay=config.weight_decay
        )

    a_opt = torch.optim.Adam(
        net.arch_parameters(),
        lr=config.arch_lr,
        betas=(0.5, 0.999),
        weight_decay=config.arch_weight_decay,
    )
    clip = config.grad_clip
    if method == "darts1":
        return DartsFirstOrder(net, w_opt(net.weight_parameters()), a_opt, grad_clip=clip)
    if method == "darts2":
        return DartsSecondOrder(net, w_opt(net.weight_parameters()), a_opt, grad_clip=clip)
    if method == "rarts":
        mode: Any = config.alpha_grad
        return RARTS(
            net, w_opt, a_opt, lam=config.lam, beta=config.beta, alpha_grad=mode, grad_clip=clip
        )
    raise ValueError(f"methods: unknown method {method!r}; known: {sorted(METHODS)}")


def _search(
    method: str,
    config: RartsConfig,
    data: tuple[torch.Tensor, ...],
    seed: int,
    device: torch.device,
) -> tuple[Genotype, float, list[dict[str, float]], dict[str, Any]]:
    x, y = data[0], data[1]
    num_classes = int(data[4])
    half = x.shape[0] // 2
    seed_everything(seed)
    in_channels, dims, primitives = _space(x)
    net = SearchNetwork(
        config.search_channels,
        num_classes,
        config.search_layers,
        steps=config.search_nodes,
        multiplier=config.search_nodes,
        primitives=primitives,
        in_channels=in_channels,
        dims=dims,
        reduction_cells=(config.search_layers // 3,) if config.search_layers >= 3 else (),
    ).to(device)
    stepper = _stepper(method, net, config)
    w_opts = [stepper.w_opt] if not isinstance(stepper, RARTS) else [stepper.w_opt, stepper.y_opt]  # type: ignore[attr-defined]
    scheds = [
        torch.optim.lr_scheduler.CosineAnnealingLR(o, config.search_epochs, eta_min=config.w_lr_min)
        for o in w_opts
    ]
    tl = make_loader(x[:half], y[:half], batch_size=config.batch_size, shuffle=True, seed=seed)
    vl = make_loader(x[half:], y[half:], batch_size=config.batch_size, shuffle=True, seed=seed + 1)
    res = run_search(stepper, tl, vl, epochs=config.search_epochs, device=device, schedulers=scheds)
    diag = {"op_counts": net.op_counts(), "alpha_entropy": net.alpha_entropy()}
    return net.genotype(), res.search_seconds, res.history, diag


def _retrain(
    genotype: Genotype,
    config: RartsConfig,
    data: tuple[torch.Tensor, ...],
    seed: int,
    device: torch.device,
) -> tuple[float, int]:
    x, y, xt, yt = data[:4]
    seed_everything(seed)
    in_channels, dims, _ = _space(x)
    net = EvalNetwork(
        genotype, config.eval_channels, int(data[4]), config.eval_layers,
        in_channels=in_channels, dims=dims,
    )  # fmt: skip
    opt = torch.optim.SGD(
        net.parameters(),
        lr=config.eval_lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.eval_epochs)
    loader = make_loader(x, y, batch_size=config.batch_size, shuffle=True, seed=seed)
    fit(
        net,
        loader,
        opt,
        loss_fn=F.cross_entropy,
        epochs=config.eval_epochs,
        device=device,
        scheduler=sched,
        grad_clip=config.grad_clip,
        progress=False,
    )
    params = count_parameters(net)
    return accuracy(net, xt, yt, device=device), params


def run(config: RartsConfig, ctx: RunContext) -> Result:
    """Per seed: search with each method, derive, retrain from scratch, test; then rows and checks."""
    acc: dict[str, list[float]] = {m: [] for m in config.methods}
    secs: dict[str, list[float]] = {m: [] for m in config.methods if m != "random"}
    params: dict[str, list[float]] = {m: [] for m in config.methods}
    curves: dict[str, list[list[float]]] = {m: [] for m in secs}
    genotypes: dict[str, list[Any]] = {m: [] for m in config.methods}
    diagnostics: dict[str, list[Any]] = {m: [] for m in secs}
    t0 = time.perf_counter()
    for seed in ctx.seeds:
        data = _data(config, seed)
        for m in config.methods:
            if m == "random":
                geno = random_genotype(
                    _space(data[0])[2],
                    config.search_nodes,
                    generator=torch.Generator().manual_seed(seed),
                )
            else:
                geno, s, hist, diag = _search(m, config, data, seed, ctx.device)
                secs[m].append(s)
                curves[m].append([h["val_loss"] for h in hist])
                diagnostics[m].append(diag)
                ctx.log.info("seed %d %s: search %.1fs, genotype %s", seed, m, s, geno)
            a, p = _retrain(geno, config, data, seed, ctx.device)
            acc[m].append(a)
            params[m].append(float(p))
            genotypes[m].append(geno._asdict())
            ctx.log.info("seed %d %s: test top-1 %.4f (%d params)", seed, m, a, p)
    rows = [Row.from_values(METHODS[m], "test_top1", v) for m, v in acc.items()]
    rows += [Row.from_values(METHODS[m], "search_s", v) for m, v in secs.items()]
    rows += [Row.from_values(METHODS[m], "eval_params", v) for m, v in params.items()]
    checks = _checks(rows, config)
    epochs = [float(e + 1) for e in range(config.search_epochs)]
    curve = Curve.from_seeds(
        "search: validation loss (RARTS: at y)",
        "search epoch",
        "cross-entropy",
        epochs,
        {METHODS[m]: cs for m, cs in curves.items()},
    )
    extra = {
        "genotypes": genotypes,
        "diagnostics": diagnostics,
        "config": asdict(config),
        "total_s": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
    }
    return Result(rows=rows, checks=checks, curves={"search_val_loss": curve}, extra=extra)


def _checks(rows: list[Row], config: RartsConfig) -> list[Check]:
    have = {(r.method, r.metric) for r in rows}
    checks: list[Check] = []

    def get(m: str, metric: str) -> Row | None:
        return find_row(rows, METHODS[m], metric) if (METHODS[m], metric) in have else None

    r_s, d1_s, d2_s = get("rarts", "search_s"), get("darts1", "search_s"), get("darts2", "search_s")
    if r_s and d2_s:
        ratio = r_s.mean / d2_s.mean
        checks.append(
            Check(
                "RARTS search wall-clock <= 0.55x DARTS-2nd",
                ratio <= 0.55,
                f"{r_s.mean:.1f}s vs {d2_s.mean:.1f}s (ratio {ratio:.2f})",
            )
        )
    if r_s and d1_s:
        ratio = r_s.mean / d1_s.mean
        checks.append(
            Check(
                "RARTS search wall-clock <= 1.3x DARTS-1st",
                ratio <= 1.3,
                f"{r_s.mean:.1f}s vs {d1_s.mean:.1f}s (ratio {ratio:.2f})",
            )
        )
    r, d1, d2 = get("rarts", "test_top1"), get("darts1", "test_top1"), get("darts2", "test_top1")
    rnd = get("random", "test_top1")
    if r and d1:
        checks.append(
            Check(
                "RARTS mean test top-1 >= DARTS-1st",
                r.mean >= d1.mean,
                f"{r.mean:.4f} ± {r.std:.4f} vs {d1.mean:.4f} ± {d1.std:.4f}",
            )
        )
    if r and d2:
        checks.append(
            Check(
                "RARTS mean test top-1 within 1 point of DARTS-2nd (soft)",
                r.mean >= d2.mean - 0.01,
                f"{r.mean:.4f} ± {r.std:.4f} vs {d2.mean:.4f} ± {d2.std:.4f}",
            )
        )
    searched = [x for x in (r, d1, d2) if x is not None]
    if searched and rnd:
        mean = sum(x.mean for x in searched) / len(searched)
        checks.append(
            Check(
                "searched architectures beat a random one (soft; mean of searched methods)",
                mean > rnd.mean,
                f"{mean:.4f} vs {rnd.mean:.4f} ± {rnd.std:.4f}",
            )
        )
    return checks


EXPERIMENT = Experiment(
    name="rarts",
    description="RARTS vs DARTS-1st/2nd vs random: search, derive, retrain on mnist1d (1-D DARTS space)",
    config_cls=RartsConfig,
    run=run,
    budgets={
        "smoke": {
            "n_train": 128,
            "search_channels": 4,
            "search_nodes": 2,
            "search_epochs": 1,
            "eval_channels": 4,
            "eval_layers": 3,
            "eval_epochs": 1,
            "arch_lr": 3e-3,
        },
        "quick": {
            "n_train": 768,
            "search_nodes": 2,
            "search_epochs": 4,
            "eval_channels": 8,
            "eval_layers": 3,
            "eval_epochs": 6,
            "arch_lr": 3e-3,
        },
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
