"""``paperzoo run losses``: every classification loss of the workspace under one protocol.

For each data set, seed and setting (:mod:`paperzoo.losses.settings`), every contestant of
:mod:`paperzoo.losses.registry` trains the same MLP (``paperzoo.core.models.mlp``, AdamW, same
epochs and batch, same initialisation per seed) through ``paperzoo.core.training.fit``, once per
point of its own hyper-parameter grid; ``paperzoo.core.selection.select_on_validation`` picks the
point with the best score on the *noisy* validation split (top-1; macro-F1 in imbalanced settings),
and only that point's test metrics are reported. Ranks per setting use the headline metric
(test top-1; G-mean in imbalanced settings); each loss is compared with cross-entropy by a
paired t-test and a sign test over seeds on that metric.

Budgets. ``--smoke``: digits clean and uniform40 and breast cancer imbalance10, 2 epochs, one
seed, four losses, one grid point each. ``--quick`` (minutes of CPU at one thread; see the
README for the measured time): every contestant and its quick grid (at most two points), 10
epochs, 3 seeds; digits in all eight settings, mnist5k trimmed to uniform40 alone, breast cancer
(binary) trimmed to clean / uniform40 / imbalance10 / imbalance100. ``--full``: 5 seeds, 60 epochs,
the full grids (3-4 points), every setting on digits and mnist5k, six on breast cancer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.checks import UserError, check_positive, check_positive_int
from paperzoo.core.data import Split, load_dataset
from paperzoo.core.datasets import load_real_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import predict
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext
from paperzoo.core.models import mlp
from paperzoo.core.selection import grid, label, select_on_validation
from paperzoo.core.training import fit
from paperzoo.losses.metrics import classification_metrics
from paperzoo.losses.registry import CONTESTANTS, Contestant, Task, contestants_for
from paperzoo.losses.settings import apply_setting, parse_setting
from paperzoo.losses.stats import average_ranks, paired_t_test

__all__ = ["EXPERIMENT", "LossesConfig", "run"]

ALL_SETTINGS = (
    "clean",
    "uniform20",
    "uniform40",
    "uniform60",
    "pairflip30",
    "classdep",
    "imbalance10",
    "imbalance100",
)
BINARY_SETTINGS = ("clean", "uniform20", "uniform40", "classdep", "imbalance10", "imbalance100")
QUICK_SETTINGS = (
    *(f"digits/{s}" for s in ALL_SETTINGS),
    "mnist5k/uniform40",
    "breast_cancer/clean",
    "breast_cancer/uniform40",
    "breast_cancer/imbalance10",
    "breast_cancer/imbalance100",
)
FULL_SETTINGS = (
    *(f"{d}/{s}" for d in ("digits", "mnist5k") for s in ALL_SETTINGS),
    *(f"breast_cancer/{s}" for s in BINARY_SETTINGS),
)
ROBUST = ("gce", "mae", "ldr_kl", "aldr_kl")


@dataclass(frozen=True)
class LossesConfig:
    """Config of ``paperzoo run losses``.

    Attributes:
        settings: ``"<dataset>/<setting>"`` entries; a data set of ``paperzoo.core.data`` and a
            setting of :func:`paperzoo.losses.settings.parse_setting`.
        losses: contestant names (empty: every one that applies).
        full_grid: use each contestant's full grid instead of its quick grid.
        max_grid: cap on the grid points per contestant (the shared selection budget).
        epochs, batch_size, hidden, lr, weight_decay: the one training recipe (AdamW, MLP with
            two hidden layers of ``hidden`` units).
        data_root: a folder holding ``real_datasets`` in the layouts of
            ``paperzoo.core.datasets``; empty: offline data only.
        real_datasets: real data sets raced (flattened to vectors) when ``data_root`` is given.
        real_settings: settings applied to each real data set.
        real_max_train: cap on the training rows drawn from a real data set (0: all).
        threads: torch threads for the run (1 for honest CPU timing).
    """

    settings: tuple[str, ...] = QUICK_SETTINGS
    losses: tuple[str, ...] = ()
    full_grid: bool = False
    max_grid: int = 4
    epochs: int = 20
    batch_size: int = 64
    hidden: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    data_root: str = ""
    real_datasets: tuple[str, ...] = ("mnist",)
    real_settings: tuple[str, ...] = ("clean", "uniform40", "imbalance100")
    real_max_train: int = 20000
    threads: int | None = 1

    def __post_init__(self) -> None:
        for entry in self.settings:
            if entry.count("/") != 1:
                raise UserError(f"settings: expected '<dataset>/<setting>', got {entry!r}")
            parse_setting(entry.split("/")[1])
        for s in self.real_settings:
            parse_setting(s)
        known = {c.name for c in CONTESTANTS}
        for name in self.losses:
            if name not in known:
                raise UserError(f"losses: unknown loss {name!r}; known: {', '.join(sorted(known))}")
        if self.losses and "cross_entropy" not in self.losses:
            raise UserError("losses: the race needs 'cross_entropy' (the paired-test baseline)")
        check_positive_int("max_grid", self.max_grid)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("hidden", self.hidden)
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive_int("real_max_train", self.real_max_train, minimum=0)


@dataclass
class _Outcome:
    """One contestant in one (data set, setting, seed): the selected point and its metrics."""

    params: str
    val_score: float
    metrics: dict[str, float] = field(default_factory=dict)


def _loader(split: Split, batch_size: int, seed: int) -> DataLoader[tuple[Tensor, ...]]:
    idx = torch.arange(split.x_train.shape[0])
    g = torch.Generator().manual_seed(seed)
    ds = TensorDataset(split.x_train, split.y_train, idx)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, generator=g)


def _train(
    cfg: LossesConfig,
    split: Split,
    loss: nn.Module,
    needs_index: bool,
    seed: int,
    dev: torch.device,
) -> nn.Module:
    seed_everything(seed)
    model = mlp([split.num_features, cfg.hidden, cfg.hidden, split.num_classes])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss.to(dev)

    def step(m: nn.Module, batch: Any, device: torch.device) -> Tensor:
        x, y, i = (t.to(device) for t in batch)
        out = m(x)
        return loss(out, y, i) if needs_index else loss(out, y)  # type: ignore[no-any-return]

    fit(
        model,
        _loader(split, cfg.batch_size, seed),
        opt,
        step_fn=step,
        epochs=cfg.epochs,
        device=dev,
        progress=False,
    )
    return model


def _race_one(
    cfg: LossesConfig, c: Contestant, noisy: Any, seed: int, dev: torch.device
) -> _Outcome:
    split: Split = noisy.split
    task = Task(split.num_classes, int(split.x_train.shape[0]))
    axes = c.full_grid if cfg.full_grid else c.grid
    points = grid(**axes)[: cfg.max_grid]
    found: dict[str, dict[str, float]] = {}
    select_key = "macro_f1" if noisy.imbalanced else "top1"

    def score(p: Mapping[str, Any]) -> float:
        model = _train(cfg, split, c.build(p, task), c.needs_index, seed, dev)
        val = predict(model, split.x_val, device=dev)
        test = predict(model, split.x_test, device=dev)
        tr = predict(model, split.x_train, device=dev)
        m = classification_metrics(test, split.y_test)
        clean_val_top1 = float((val.argmax(1) == noisy.y_val_clean).double().mean())
        noisy_train_top1 = float((tr.argmax(1) == split.y_train).double().mean())
        m["gap"] = noisy_train_top1 - clean_val_top1
        found[label(p)] = m
        return classification_metrics(val, split.y_val)[select_key]

    sel = select_on_validation(points, score)
    return _Outcome(label(sel.best), sel.best_score, found[label(sel.best)])


def _real_split(cfg: LossesConfig, name: str, seed: int) -> Split:
    """A real data set read from ``cfg.data_root`` by the core's ``load_real_split`` (official
    test split, flattened, pixels in [0, 1] as the offline image sets, a seeded stratified sixth
    of train for validation), the training rows capped at ``real_max_train``."""
    s = load_real_split(name, cfg.data_root, seed=seed, val_fraction=1 / 6)
    cap = cfg.real_max_train or None
    return replace(s, x_train=s.x_train[:cap], y_train=s.y_train[:cap])


def _entries(cfg: LossesConfig) -> list[tuple[str, str, bool]]:
    out = [(e.split("/")[0], e.split("/")[1], False) for e in cfg.settings]
    if cfg.data_root:
        out += [(d, s, True) for d in cfg.real_datasets for s in cfg.real_settings]
    return out


def run(config: LossesConfig, ctx: RunContext) -> Result:
    """Race every contestant in every setting and seed; rows, ranks, paired tests and checks."""
    log = ctx.log or logging.getLogger(__name__)
    # results[key][loss] = list over seeds of _Outcome
    results: dict[str, dict[str, list[_Outcome]]] = {}
    imbalanced: dict[str, bool] = {}
    entries = _entries(config)
    for seed in ctx.seeds:
        cache: dict[str, Split] = {}
        for ds_name, setting, real in entries:
            if ds_name not in cache:
                cache[ds_name] = (
                    _real_split(config, ds_name, seed) if real else load_dataset(ds_name, seed=seed)
                )
            noisy = apply_setting(cache[ds_name], setting, seed=seed)
            key = f"{ds_name}/{setting}"
            imbalanced[key] = noisy.imbalanced
            for c in contestants_for(noisy.split.num_classes, config.losses):
                out = _race_one(config, c, noisy, seed, ctx.device)
                results.setdefault(key, {}).setdefault(c.name, []).append(out)
                log.info(
                    "%s seed %d %s [%s]: test top-1 %.4f",
                    key,
                    seed,
                    c.name,
                    out.params,
                    out.metrics["top1"],
                )
    return _summarise(results, imbalanced, ctx)


def _headline(imbalanced: bool) -> str:
    return "gmean" if imbalanced else "top1"


def _summarise(
    results: dict[str, dict[str, list[_Outcome]]], imbalanced: dict[str, bool], ctx: RunContext
) -> Result:
    rows: list[Row] = []
    ranks: dict[str, dict[str, float]] = {}
    paired: dict[str, dict[str, dict[str, Any]]] = {}
    selected: dict[str, dict[str, list[str]]] = {}
    n_seeds = len(ctx.seeds)
    for key, by_loss in results.items():
        head = _headline(imbalanced[key])
        metrics = ["top1", "macro_f1", *(["gmean"] if imbalanced[key] else []), "ece", "gap"]
        for loss, outs in by_loss.items():
            for m in metrics:
                rows.append(Row.from_values(loss, f"{key}/{m}", [o.metrics[m] for o in outs]))
        per_seed_ranks = [
            average_ranks({loss: outs[s].metrics[head] for loss, outs in by_loss.items()})
            for s in range(n_seeds)
        ]
        for loss in by_loss:
            rows.append(Row.from_values(loss, f"{key}/rank", [r[loss] for r in per_seed_ranks]))
        ranks[key] = {loss: sum(r[loss] for r in per_seed_ranks) / n_seeds for loss in by_loss}
        base = [o.metrics[head] for o in by_loss["cross_entropy"]]
        paired[key] = {}
        for loss, outs in by_loss.items():
            if loss == "cross_entropy":
                continue
            test = paired_t_test([o.metrics[head] for o in outs], base)
            paired[key][loss] = {"metric": head, **asdict(test)}
            if not math.isnan(test.p_t):
                rows.append(Row.from_values(loss, f"{key}/p_vs_ce", [test.p_t]))
        selected[key] = {loss: [o.params for o in outs] for loss, outs in by_loss.items()}
    mean_rank: dict[str, float] = {}
    for loss in sorted({n for by in ranks.values() for n in by}):
        vals = [r[loss] for r in ranks.values() if loss in r]
        mean_rank[loss] = sum(vals) / len(vals)
        rows.append(Row.from_values(loss, "all/mean_rank", vals))
    return Result(
        rows=rows,
        checks=_checks(results, imbalanced),
        curves=_rank_curve(ranks),
        extra={
            "ranks": ranks,
            "mean_rank": dict(sorted(mean_rank.items(), key=lambda kv: kv[1])),
            "paired_vs_cross_entropy": paired,
            "selected": selected,
            "headline_metric": {k: _headline(v) for k, v in imbalanced.items()},
        },
    )


def _mean(outs: list[_Outcome], m: str) -> float:
    return sum(o.metrics[m] for o in outs) / len(outs)


def _checks(
    results: dict[str, dict[str, list[_Outcome]]], imbalanced: dict[str, bool]
) -> list[Check]:
    checks: list[Check] = []
    noisy = results.get("digits/uniform40")
    if noisy is not None:
        ce = _mean(noisy["cross_entropy"], "top1")
        best = max(
            (r for r in ROBUST if r in noisy), key=lambda r: _mean(noisy[r], "top1"), default=None
        )
        if best is not None:
            b = _mean(noisy[best], "top1")
            checks.append(
                Check(
                    "some robust loss (GCE, MAE, LDR-KL, ALDR-KL) beats cross-entropy top-1 at 40% "
                    "uniform noise on digits",
                    b > ce,
                    f"best robust: {best} {b:.4f} vs cross-entropy {ce:.4f}",
                )
            )
            gce = noisy.get("gce")
            if gce is not None:
                g_gap, c_gap = _mean(gce, "gap"), _mean(noisy["cross_entropy"], "gap")
                checks.append(
                    Check(
                        "GCE memorises less than cross-entropy at 40% uniform noise on digits "
                        "(smaller noisy-train minus clean-validation top-1 gap)",
                        g_gap < c_gap,
                        f"gap GCE {g_gap:.4f} vs cross-entropy {c_gap:.4f}",
                    )
                )
    clean = results.get("digits/clean")
    if clean is not None:
        ce = _mean(clean["cross_entropy"], "top1")
        best_name = max(clean, key=lambda r: _mean(clean[r], "top1"))
        b = _mean(clean[best_name], "top1")
        checks.append(
            Check(
                "without noise cross-entropy is within 1 point of the best loss on digits (top-1)",
                b - ce <= 0.01,
                f"cross-entropy {ce:.4f}, best {best_name} {b:.4f}",
            )
        )
    for key in ("digits/imbalance100", "breast_cancer/imbalance100"):
        imb = results.get(key)
        if imb is None:
            continue
        ce = _mean(imb["cross_entropy"], "gmean")
        best_name = max(imb, key=lambda r: _mean(imb[r], "gmean"))
        b = _mean(imb[best_name], "gmean")
        checks.append(
            Check(
                f"some loss beats cross-entropy in G-mean at {key.replace('/', ' ')} "
                "(imbalance 100:1)",
                b > ce,
                f"best {best_name} {b:.4f} vs cross-entropy {ce:.4f}",
            )
        )
    return checks


def _rank_curve(ranks: dict[str, dict[str, float]]) -> dict[str, Curve]:
    keys = list(ranks)
    common = [n for n in (c.name for c in CONTESTANTS) if all(n in ranks[k] for k in keys)]
    if len(keys) < 2 or not common:
        return {}
    return {
        "ranks": Curve(
            "losses: mean rank over seeds per setting (1 = best; "
            + ", ".join(f"{i + 1}={k}" for i, k in enumerate(keys))
            + ")",
            "setting",
            "mean rank",
            [float(i + 1) for i in range(len(keys))],
            {n: [ranks[k][n] for k in keys] for n in common},
        )
    }


EXPERIMENT = Experiment(
    name="losses",
    description="which loss should I use: every classification loss under one protocol",
    config_cls=LossesConfig,
    run=run,
    budgets={
        "smoke": {
            "settings": ("digits/clean", "digits/uniform40", "breast_cancer/imbalance10"),
            "losses": ("cross_entropy", "gce", "ldr_kl", "anyloss"),
            "epochs": 2,
            "max_grid": 1,
        },
        "quick": {"epochs": 10},
        "full": {"settings": FULL_SETTINGS, "full_grid": True, "epochs": 60},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
