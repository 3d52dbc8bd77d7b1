"""The paper's small reproduction (spec section 6), every model trained with ``fit``.

One concept (the spec's reproduction): the parts share the config, the seeds, the data loaders and
the row/check assembly, so they stay in one module of about 500 lines.

A (clean family sweep): mnist5k (4000 train / 1000 test), MLP 784-256-256-10, Adam 1e-3, batch 128;
one run per ``tau`` and seed; test accuracy after every epoch. Expected (spec): at epoch 2 MAE
(``tau = 2``) and sum-exponential (``tau = 0``) trail cross-entropy (``tau = 1``) by more than two
pooled standard errors; after the last epoch all members lie within about a point (reported only).

B (adversarial): sklearn digits in [0, 1], 80/20 split, MLP 64-256-256-10, l-inf ``eps = 0.1``,
PGD-10 (step 0.025) during training; clean accuracy and robust accuracy under PGD-20 (step 0.01,
cross-entropy objective) from a zero start and a random start, an example counting as robust only
if it survives both. Methods: standard CE, PGD-AT, TRADES (beta 6), ADV-COMP-SUM (tau 1) for each
``nu``. Expected (spec): each adversarial method >= CE's robust accuracy + 20 points; ADV-COMP-SUM at
``nu <= 0.5`` >= TRADES - 3 points on clean and on robust accuracy; ``nu = 2`` collapses to the
constant classifier (clean accuracy at chance), detected and reported.

C (many classes; the spec's optional test of the paper's claim that MAE degrades most with many
classes): a synthetic Gaussian mixture (``core.data.gaussian_mixture``, dimension 32, 100 training
and 50 test points per class) with 10 and with 100 classes, MLP 32-256-256-K, Adam 1e-3, 10 epochs,
``tau`` in {0, 1, 2}. Expected: CE's lead over MAE is larger with 100 classes than with 10.

At paper scale, ``--set data_root=DIR`` runs A and B on ``real_dataset`` (CIFAR-10 by default,
CIFAR-100, MNIST or Fashion-MNIST, read by ``paperzoo.core.datasets``: the official split, pixels in
[0, 1], flattened for the same MLPs) instead of mnist5k and digits; C stays synthetic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.compsum.attacks import (
    PGD,
    PGDInit,
    cross_entropy_objective,
    logit_diff_distance,
    robust_accuracy,
    trades_kl_objective,
)
from paperzoo.compsum.losses import comp_sum_loss
from paperzoo.compsum.training import AdvCompSumTrainer, PGDATTrainer, TRADESTrainer
from paperzoo.core.checks import check_choice
from paperzoo.core.data import gaussian_mixture, make_loader
from paperzoo.core.datasets import load_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.training import Callback, TrainState, fit

__all__ = ["EXPERIMENT", "CompSumConfig", "run"]

_PARTS = ("A", "B", "C")
_METHODS = ("ce", "pgd_at", "trades", "acs")


@dataclass(frozen=True)
class CompSumConfig:
    """Config of the ``compsum`` reproduction (spec section 6 defaults; ``b_epochs`` 40 = spec).

    ``parts``: a comma list of ``A``, ``B``, ``C``. Part A: ``a_*`` fields; part B: ``b_*`` fields
    and the attack (``eps``, ``step_size``, ``train_steps``; evaluation ``test_steps`` /
    ``test_step_size``); part C: ``c_*`` fields (learning rate ``a_lr``).
    ``b_methods`` is a subset of ``ce, pgd_at, trades, acs`` (``acs`` = ADV-COMP-SUM, one run per
    value of ``b_nus``). ``threads`` is the torch CPU thread count the run scopes (restored afterwards).
    """

    parts: str = "A,B,C"
    a_taus: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    a_epochs: int = 15
    a_early_epoch: int = 2
    a_n_train: int = 4000
    a_lr: float = 1e-3
    b_methods: tuple[str, ...] = _METHODS
    b_nus: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    b_tau: float = 1.0
    b_epochs: int = 40
    b_lr: float = 1e-3
    b_n_test: int = 0
    trades_beta: float = 6.0
    eps: float = 0.1
    step_size: float = 0.025
    train_steps: int = 10
    test_steps: int = 20
    test_step_size: float = 0.01
    c_taus: tuple[float, ...] = (0.0, 1.0, 2.0)
    c_classes: tuple[int, ...] = (10, 100)
    c_per_class: int = 100
    c_epochs: int = 10
    c_dim: int = 32
    c_separation: float = 4.0
    hidden: int = 256
    batch_size: int = 128
    threads: int = 1
    data_root: str = ""  # a folder with the paper's data set: A and B run on real_dataset
    real_dataset: str = "cifar10"  # cifar10, cifar100, mnist or fashion-mnist

    def __post_init__(self) -> None:
        check_choice(
            "real_dataset", self.real_dataset, ("cifar10", "cifar100", "mnist", "fashion-mnist")
        )
        parts = [p.strip() for p in self.parts.split(",") if p.strip()]
        if not parts or any(p not in _PARTS for p in parts):
            raise ValueError(f"parts: expected a comma list of A, B, C, got {self.parts!r}")
        if not self.a_taus or any(not math.isfinite(t) or t < 0 for t in self.a_taus):
            raise ValueError(f"a_taus: expected finite values >= 0, got {self.a_taus!r}")
        if "A" in parts and 1.0 not in self.a_taus:
            raise ValueError(
                f"a_taus: expected it to hold 1.0 (the CE reference), got {self.a_taus!r}"
            )
        if not self.b_methods or any(m not in _METHODS for m in self.b_methods):
            raise ValueError(f"b_methods: expected a subset of {_METHODS}, got {self.b_methods!r}")
        if any(not math.isfinite(v) or v < 0 for v in self.b_nus):
            raise ValueError(f"b_nus: expected finite values >= 0, got {self.b_nus!r}")
        if "acs" in self.b_methods and not self.b_nus:
            raise ValueError("b_nus: expected at least one value when b_methods holds 'acs'")
        if not self.c_taus or any(not math.isfinite(t) or t < 0 for t in self.c_taus):
            raise ValueError(f"c_taus: expected finite values >= 0, got {self.c_taus!r}")
        if not self.c_classes or any(isinstance(k, bool) or k < 2 for k in self.c_classes):
            raise ValueError(f"c_classes: expected class counts >= 2, got {self.c_classes!r}")
        for name in (
            "a_epochs",
            "a_n_train",
            "b_epochs",
            "c_per_class",
            "c_epochs",
            "c_dim",
            "hidden",
            "batch_size",
            "threads",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        for name in ("a_early_epoch", "train_steps", "test_steps", "b_n_test"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        if not 1 <= self.a_early_epoch <= self.a_epochs:
            raise ValueError(
                f"a_early_epoch: expected a value in [1, a_epochs={self.a_epochs}], "
                f"got {self.a_early_epoch}"
            )
        for name in (
            "a_lr",
            "b_lr",
            "trades_beta",
            "eps",
            "step_size",
            "test_step_size",
            "c_separation",
        ):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name}: expected a finite value > 0, got {v!r}")
        if not math.isfinite(self.b_tau) or self.b_tau < 0:
            raise ValueError(f"b_tau: expected a finite value >= 0, got {self.b_tau!r}")

    @property
    def part_list(self) -> list[str]:
        """The parts to run, in order."""
        chosen = {p.strip() for p in self.parts.split(",")}
        return [p for p in _PARTS if p in chosen]


class _TestAccuracy(Callback):
    """Records the test accuracy after every epoch into the epoch's logs (``test_acc``)."""

    def __init__(self, x: Tensor, y: Tensor, device: torch.device) -> None:
        self.x, self.y, self.device = x, y, device

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        logs["test_acc"] = accuracy(state.model, self.x, self.y, device=self.device)


def _tau_name(tau: float) -> str:
    names = {0.0: "sum-exp", 1.0: "CE", 2.0: "MAE"}
    return f"comp-sum tau={tau:g}" + (f" ({names[tau]})" if tau in names else "")


def _part_a(
    cfg: CompSumConfig, ctx: RunContext, add: Callable[[str, str, float], None]
) -> dict[str, list[float]]:
    split = load_split(
        "mnist5k", data_root=cfg.data_root, real_dataset=cfg.real_dataset, seed=0,
        val_fraction=0.0, test_fraction=0.2,
    )  # fmt: skip
    x_tr, y_tr = split.x_train[: cfg.a_n_train], split.y_train[: cfg.a_n_train]
    x_te, y_te = split.x_test, split.y_test
    curves: dict[str, list[float]] = {}
    for seed in ctx.seeds:
        for tau in cfg.a_taus:
            seed_everything(seed)
            model = mlp([split.num_features, cfg.hidden, cfg.hidden, split.num_classes])
            opt = torch.optim.Adam(model.parameters(), lr=cfg.a_lr)
            loader = make_loader(x_tr, y_tr, batch_size=cfg.batch_size, shuffle=True, seed=seed)

            def loss_fn(logits: Tensor, y: Tensor, tau: float = tau) -> Tensor:
                return comp_sum_loss(logits, y, tau, validate=False)

            res = fit(
                model,
                loader,
                opt,
                loss_fn=loss_fn,
                epochs=cfg.a_epochs,
                device=ctx.device,
                callbacks=[_TestAccuracy(x_te, y_te, ctx.device)],
                progress=False,
            )
            accs = [h["test_acc"] for h in res.history]
            name = _tau_name(tau)
            add(name, f"test_acc@epoch{cfg.a_early_epoch}", accs[cfg.a_early_epoch - 1])
            if cfg.a_early_epoch != cfg.a_epochs:
                add(name, f"test_acc@epoch{cfg.a_epochs}", accs[-1])
            if seed == ctx.seeds[0]:
                curves[name] = accs
            ctx.log.info(
                "A seed %d tau %g: epoch-%d %.3f, final %.3f",
                seed,
                tau,
                cfg.a_early_epoch,
                accs[cfg.a_early_epoch - 1],
                accs[-1],
            )
    return curves


def _attack(cfg: CompSumConfig, objective: Any, init: PGDInit = "normal") -> PGD:
    return PGD(
        cfg.eps,
        cfg.step_size,
        cfg.train_steps,
        init=init,
        objective=objective,
        validate=False,
    )


def _part_b(
    cfg: CompSumConfig, ctx: RunContext, add: Callable[[str, str, float], None]
) -> dict[str, list[float]]:
    split = load_split(
        "digits", data_root=cfg.data_root, real_dataset=cfg.real_dataset, seed=0,
        val_fraction=0.0, test_fraction=0.2,
    )  # fmt: skip
    x_tr, y_tr = split.x_train, split.y_train
    x_te, y_te = split.x_test, split.y_test
    if cfg.b_n_test:
        x_te, y_te = x_te[: cfg.b_n_test], y_te[: cfg.b_n_test]
    test = list(make_loader(x_te, y_te, batch_size=512, shuffle=False))
    evals = [
        PGD(
            cfg.eps,
            cfg.test_step_size,
            cfg.test_steps,
            init=init,
            objective=cross_entropy_objective,
            validate=False,
        )
        for init in ("none", "uniform")
    ]
    runs: list[tuple[str, float]] = []  # (method, nu); nu is used by "acs" only
    for m in cfg.b_methods:
        runs += [(m, nu) for nu in cfg.b_nus] if m == "acs" else [(m, 0.0)]
    curves: dict[str, list[float]] = {}
    for seed in ctx.seeds:
        for method, nu in runs:
            seed_everything(seed)
            model: nn.Module = mlp([split.num_features, cfg.hidden, cfg.hidden, split.num_classes])
            opt = torch.optim.Adam(model.parameters(), lr=cfg.b_lr)
            loader = make_loader(x_tr, y_tr, batch_size=cfg.batch_size, shuffle=True, seed=seed)
            cb = _TestAccuracy(x_te, y_te, ctx.device)
            if method == "ce":
                name = "CE (standard)"
                res = fit(
                    model,
                    loader,
                    opt,
                    loss_fn=F.cross_entropy,
                    epochs=cfg.b_epochs,
                    device=ctx.device,
                    callbacks=[cb],
                    progress=False,
                )
            else:
                trainer: AdvCompSumTrainer | PGDATTrainer | TRADESTrainer
                if method == "pgd_at":
                    name = "PGD-AT"
                    trainer = PGDATTrainer(
                        model,
                        attack=_attack(cfg, cross_entropy_objective, "uniform"),
                        validate=False,
                    )
                elif method == "trades":
                    name = f"TRADES (beta={cfg.trades_beta:g})"
                    trainer = TRADESTrainer(
                        model,
                        beta=cfg.trades_beta,
                        attack=_attack(cfg, trades_kl_objective),
                        validate=False,
                    )
                else:
                    name = f"ADV-COMP-SUM (tau={cfg.b_tau:g}, nu={nu:g})"
                    trainer = AdvCompSumTrainer(
                        model,
                        tau=cfg.b_tau,
                        nu=nu,
                        attack=_attack(cfg, logit_diff_distance),
                        validate=False,
                    )
                res = fit(
                    model,
                    loader,
                    opt,
                    step_fn=trainer.fit_step,
                    epochs=cfg.b_epochs,
                    device=ctx.device,
                    callbacks=[cb],
                    progress=False,
                )
            model = res.state.model
            clean = accuracy(model, x_te, y_te, device=ctx.device)
            robust = robust_accuracy(model, test, evals)
            add(name, "clean_acc", clean)
            add(name, "robust_acc_pgd20", robust)
            if seed == ctx.seeds[0]:
                curves[name] = [h["test_acc"] for h in res.history]
            if clean <= 1.0 / split.num_classes + 0.05:
                ctx.log.warning(
                    "B seed %d %s: clean accuracy %.3f stays at chance (collapse)",
                    seed,
                    name,
                    clean,
                )
            ctx.log.info("B seed %d %s: clean %.3f robust %.3f", seed, name, clean, robust)
    return curves


def _part_c(cfg: CompSumConfig, ctx: RunContext, add: Callable[[str, str, float], None]) -> None:
    """Many classes: a synthetic Gaussian mixture with each class count of ``c_classes``."""
    for seed in ctx.seeds:
        for k in cfg.c_classes:
            n_train, n_test = cfg.c_per_class * k, (cfg.c_per_class // 2) * k
            x, y = gaussian_mixture(
                n_train + n_test, k, cfg.c_dim, separation=cfg.c_separation, seed=seed
            )
            for tau in cfg.c_taus:
                seed_everything(seed)
                model = mlp([cfg.c_dim, cfg.hidden, cfg.hidden, k])
                opt = torch.optim.Adam(model.parameters(), lr=cfg.a_lr)
                loader = make_loader(
                    x[:n_train], y[:n_train], batch_size=cfg.batch_size, shuffle=True, seed=seed
                )

                def loss_fn(logits: Tensor, t: Tensor, tau: float = tau) -> Tensor:
                    return comp_sum_loss(logits, t, tau, validate=False)

                fit(
                    model,
                    loader,
                    opt,
                    loss_fn=loss_fn,
                    epochs=cfg.c_epochs,
                    device=ctx.device,
                    progress=False,
                )
                acc = accuracy(model, x[n_train:], y[n_train:], device=ctx.device)
                add(_tau_name(tau), f"test_acc@{k}classes", acc)
                ctx.log.info("C seed %d, %d classes, tau %g: %.3f", seed, k, tau, acc)


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def _checks(cfg: CompSumConfig, rows: list[Row]) -> list[Check]:
    checks: list[Check] = []
    names = {(r.method, r.metric) for r in rows}
    early = f"test_acc@epoch{cfg.a_early_epoch}"
    ce_a = _tau_name(1.0)
    for tau, label in ((2.0, "MAE (tau=2)"), (0.0, "sum-exp (tau=0)")):
        name = _tau_name(tau)
        if (name, early) in names and (ce_a, early) in names:
            a, c = find_row(rows, name, early), find_row(rows, ce_a, early)
            pooled = math.hypot(_se(a.values), _se(c.values))
            gap = c.mean - a.mean
            checks.append(
                Check(
                    f"A: {label} trails CE at epoch {cfg.a_early_epoch} by > 2 pooled SE",
                    len(a.values) > 1 and gap > 2 * pooled,
                    f"{a.mean:.3f} vs CE {c.mean:.3f}: gap {gap:.3f}, pooled SE {pooled:.3f}",
                )
            )
    clean_m, rob_m = "clean_acc", "robust_acc_pgd20"
    ce = [r for r in rows if r.method == "CE (standard)" and r.metric == rob_m]
    adv = [r for r in rows if r.metric == rob_m and r.method != "CE (standard)"]
    trades = [r.method for r in adv if r.method.startswith("TRADES")]
    if ce:
        for r in adv:
            if r.method.startswith("ADV-COMP-SUM") and _nu(r.method) > 1.0:
                continue  # the collapse check covers these
            checks.append(
                Check(
                    f"B: {r.method} robust accuracy >= CE's + 20 points",
                    r.mean >= ce[0].mean + 0.20,
                    f"{r.mean:.3f} vs CE {ce[0].mean:.3f}",
                )
            )
    for r in adv:
        if not r.method.startswith("ADV-COMP-SUM"):
            continue
        nu = _nu(r.method)
        if nu <= 0.5 and trades:
            for metric in (clean_m, rob_m):
                ours, base = find_row(rows, r.method, metric), find_row(rows, trades[0], metric)
                checks.append(
                    Check(
                        f"B: {r.method} {metric} >= TRADES - 3 points",
                        ours.mean >= base.mean - 0.03,
                        f"{ours.mean:.3f} vs TRADES {base.mean:.3f} (per seed {[round(v, 3) for v in ours.values]} "
                        f"vs {[round(v, 3) for v in base.values]})",
                    )
                )
        if nu >= 1.5:
            c = find_row(rows, r.method, clean_m)
            checks.append(
                Check(
                    f"B: {r.method} collapses to chance (clean accuracy <= 0.2), as the spec predicts for nu >= 1.5",
                    c.mean <= 0.2,
                    f"clean {c.mean:.3f} (per seed {[round(v, 3) for v in c.values]})",
                )
            )
    checks += _many_class_checks(cfg, rows, names)
    return checks


def _many_class_checks(
    cfg: CompSumConfig, rows: list[Row], names: set[tuple[str, str]]
) -> list[Check]:
    ks = sorted(cfg.c_classes)
    metric_lo, metric_hi = f"test_acc@{ks[0]}classes", f"test_acc@{ks[-1]}classes"
    mae, ce = _tau_name(2.0), _tau_name(1.0)
    need = {(mae, metric_lo), (ce, metric_lo), (mae, metric_hi), (ce, metric_hi)}
    if len(ks) < 2 or not need <= names:
        return []
    gaps = []
    for metric in (metric_lo, metric_hi):
        a, c = find_row(rows, mae, metric), find_row(rows, ce, metric)
        gaps.append([cv - av for cv, av in zip(c.values, a.values, strict=True)])
    lo, hi = statistics.fmean(gaps[0]), statistics.fmean(gaps[1])
    pooled = math.hypot(_se(gaps[0]), _se(gaps[1]))
    return [
        Check(
            f"C: MAE's accuracy gap to CE is larger with {ks[-1]} classes than with {ks[0]} "
            "(by > 2 pooled SE)",
            len(gaps[0]) > 1 and hi - lo > 2 * pooled,
            f"CE - MAE: {lo:.3f} at {ks[0]} classes, {hi:.3f} at {ks[-1]} (pooled SE {pooled:.3f})",
        )
    ]


def _nu(method: str) -> float:
    return float(method.rsplit("nu=", 1)[1].rstrip(")"))


def run(config: CompSumConfig, ctx: RunContext) -> Result:
    """Parts A and B per seed; rows over seeds; the spec's checks from the rows."""
    values: dict[tuple[str, str], list[float]] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(v)

    curves: dict[str, Curve] = {}
    parts = config.part_list
    if "A" in parts:
        a = _part_a(config, ctx, add)
        curves["family_test_acc"] = Curve(
            f"A: mnist5k test accuracy per epoch (seed {ctx.seeds[0]})",
            "epoch",
            "test accuracy",
            [float(e + 1) for e in range(config.a_epochs)],
            a,
        )
    if "B" in parts:
        b = _part_b(config, ctx, add)
        curves["adversarial_clean_acc"] = Curve(
            f"B: digits clean test accuracy per epoch (seed {ctx.seeds[0]})",
            "epoch",
            "clean accuracy",
            [float(e + 1) for e in range(config.b_epochs)],
            b,
        )
    if "C" in parts:
        _part_c(config, ctx, add)
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    return Result(
        rows=rows,
        checks=_checks(config, rows),
        curves=curves,
        extra={"threads": torch.get_num_threads()},
    )


EXPERIMENT = Experiment(
    name="compsum",
    description="comp-sum family on mnist5k (early-training gap) and ADV-COMP-SUM vs TRADES/PGD-AT on digits",
    config_cls=CompSumConfig,
    run=run,
    budgets={
        "smoke": {
            "a_taus": (0.0, 1.0, 2.0),
            "a_epochs": 2,
            "a_early_epoch": 1,
            "a_n_train": 512,
            "b_nus": (0.5,),
            "b_epochs": 1,
            "b_n_test": 64,
            "train_steps": 2,
            "test_steps": 2,
            "hidden": 32,
            "c_taus": (1.0, 2.0),
            "c_per_class": 20,
            "c_epochs": 1,
        },
        # quick: B shortened from the spec's 40 epochs to 20 to fit about 5 minutes of CPU time
        # (spec section 6: "fit 5 min by shortening the epochs")
        "quick": {"b_epochs": 20},
        "full": {"b_epochs": 40, "b_nus": (0.25, 0.5, 1.0, 2.0, 4.0)},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
