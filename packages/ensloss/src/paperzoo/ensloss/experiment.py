"""The paper's reproduction at CPU scale (spec section 6): EnsLoss vs BCE, hinge and exponential.

The paper trains CNNs on 45 CIFAR-10 class pairs ("CIFAR2") and MLPs on 14 OpenML tables. Offline,
this runs its analogue: hard digit pairs of the bundled 5000-image MNIST ("MNIST2", about 1000
images a pair, 70/30 split, pixels in [0, 1]) and scikit-learn's breast-cancer table
(standardised), with a TabMLP-like network (``Linear -> ReLU -> BatchNorm`` blocks, one logit) and
the reference's optimiser (SGD momentum 0.9, weight decay, cosine annealing over the run, batch
128; the exponential loss with gradient-norm clipping at 10 as the reference's ``train.py``).

Per seed, every loss trains from the same initial weights on the same split and batch order
(paired), so per dataset the seeds give paired differences; wins / ties / losses of EnsLoss
against each baseline come from one-sided paired t-tests at ``alpha`` as the paper counts them.
The one check (spec): pooled over pairs and seeds, EnsLoss's mean test accuracy is at least
BCE's. Train accuracy (end of training, eval mode) and the train-test gap are reported.

Scaled down from the paper: MNIST digit pairs instead of CIFAR-10 pairs and ResNets, one bundled
table instead of 14 OpenML sets, 30 (quick) or 60 (full) epochs instead of 200/300, 3 seeds
(quick) or 5 (full, the reference's 5 trials). With ``--set data_root=DIR`` (a folder holding
CIFAR-10's binary version, read by ``paperzoo.core.datasets``) the pairs are the paper's CIFAR-10
class pairs on the official split, flattened for the same TabMLP (the paper trains CNNs on them).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from paperzoo.core.checks import (
    UserError,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.datasets import load_real_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext
from paperzoo.core.training import Callback, TrainState, fit
from paperzoo.ensloss.baselines import exponential_loss, hinge_loss
from paperzoo.ensloss.loss import EnsLoss
from paperzoo.ensloss.schedule import LambdaResampler

__all__ = ["EXPERIMENT", "LOSSES", "EnsLossConfig", "paired_verdict", "run", "tab_mlp"]

LOSSES = ("BCE", "hinge", "exponential", "EnsLoss")
"""The losses the reproduction can train, in report order."""


def _parse_pairs(text: str) -> list[tuple[int, int]]:
    pairs = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        a, sep, b = item.partition("-")
        if not (sep and a.isdigit() and b.isdigit() and int(a) < 10 and int(b) < 10 and a != b):
            raise UserError(
                f"pairs: expected comma-separated digit pairs like '3-5,4-9', got {text!r}"
            )
        pairs.append((int(a), int(b)))
    return pairs


def _parse_losses(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "EnsLoss" not in names or "BCE" not in names or any(n not in LOSSES for n in names):
        raise UserError(
            f"losses: expected a comma list of {', '.join(LOSSES)} holding EnsLoss and BCE, "
            f"got {text!r}"
        )
    return [n for n in LOSSES if n in names]


@dataclass(frozen=True)
class EnsLossConfig:
    """Config of the ``ensloss`` reproduction (spec section 6 defaults; ``full`` budget).

    ``pairs``: MNIST digit pairs (the hard ones of the spec); ``breast_cancer``: add the table;
    ``losses``: which to train (EnsLoss and BCE always); ``hidden``/``depth``: the TabMLP blocks;
    ``lam``: EnsLoss's Box-Cox lambda; ``lambda_period``: resample lambda from U(-1, 1) every that
    many epochs (0: off, the reference's default); ``alpha``: the one-sided paired t-test level;
    ``data_root``: a folder holding CIFAR-10's binary version (``cifar-10-batches-bin``, see
    ``paperzoo.core.datasets``): then ``pairs`` are CIFAR-10 class pairs (the paper's CIFAR2) on
    the official train/test split, pixels flattened for the same TabMLP (the paper trains CNNs).
    """

    pairs: str = "3-5,4-9,7-9,2-7,5-8,1-7"
    breast_cancer: bool = True
    losses: str = ",".join(LOSSES)
    hidden: int = 256
    depth: int = 3
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    exp_grad_clip: float = 10.0
    test_fraction: float = 0.3
    lam: float = 0.0
    lambda_period: int = 0
    alpha: float = 0.05
    data_root: str = ""
    threads: int | None = 1  # scoped by the run (paperzoo.core.experiments.run_experiment)

    def __post_init__(self) -> None:
        if not _parse_pairs(self.pairs) and not self.breast_cancer:
            raise UserError("pairs, breast_cancer: expected at least one data set")
        _parse_losses(self.losses)
        check_positive_int("hidden", self.hidden)
        check_positive_int("depth", self.depth)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("lambda_period", self.lambda_period, minimum=0)
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("exp_grad_clip", self.exp_grad_clip)
        check_unit_interval("momentum", self.momentum)
        check_unit_interval("test_fraction", self.test_fraction, open_=True)
        check_unit_interval("alpha", self.alpha, open_=True)
        if not math.isfinite(float(self.lam)):
            raise UserError(f"lam: expected a finite number, got {self.lam!r}")


def tab_mlp(in_features: int, hidden: int = 1024, depth: int = 3) -> nn.Sequential:
    """The reference's TabMLP{depth}: ``depth`` blocks ``Linear -> ReLU -> BatchNorm1d(hidden)``,
    then ``Linear(hidden, 1)``; ``(N, in_features) -> (N, 1)``. Reference width: 1024."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.BatchNorm1d(hidden)]
        width = hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def paired_verdict(
    ours: list[float], theirs: list[float], alpha: float
) -> tuple[str, float, float]:
    """``("win" | "tie" | "loss", p_better, p_worse)`` from one-sided paired t-tests of ``ours``
    against ``theirs`` (the paper's count); all-equal differences are a tie (p = 1)."""
    diff = [a - b for a, b in zip(ours, theirs, strict=True)]
    if len(diff) < 2 or statistics.pstdev(diff) == 0.0:
        mean = statistics.fmean(diff)
        return (
            ("tie", 1.0, 1.0)
            if mean == 0.0 or len(diff) < 2
            else (("win", 0.0, 1.0) if mean > 0 else ("loss", 1.0, 0.0))
        )
    better = float(stats.ttest_rel(ours, theirs, alternative="greater").pvalue)
    worse = float(stats.ttest_rel(ours, theirs, alternative="less").pvalue)
    verdict = "win" if better < alpha else "loss" if worse < alpha else "tie"
    return verdict, better, worse


@functools.lru_cache(maxsize=2)
def _cifar10(root: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CIFAR-10's official train and test splits from ``root`` as flat [0, 1] tensors (read once)."""
    s = load_real_split("cifar10", root, val_fraction=0.0)
    return s.x_train, s.y_train, s.x_test, s.y_test


def _datasets(cfg: EnsLossConfig, seed: int) -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """``name -> (x_train, t_train, x_test, t_test)`` with 0/1 targets, split with ``seed``."""
    out: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
    pairs = _parse_pairs(cfg.pairs)
    if pairs and cfg.data_root:
        x_tr, y_tr, x_te, y_te = _cifar10(cfg.data_root)
        for a, b in pairs:
            tr = (y_tr == a) | (y_tr == b)
            te = (y_te == a) | (y_te == b)
            out[f"CIFAR10 {a}-{b}"] = (
                x_tr[tr],
                (y_tr[tr] == b).long(),
                x_te[te],
                (y_te[te] == b).long(),
            )
    elif pairs:
        s = load_dataset("mnist5k", seed=seed, val_fraction=0.0, test_fraction=cfg.test_fraction)
        for a, b in pairs:
            tr = (s.y_train == a) | (s.y_train == b)
            te = (s.y_test == a) | (s.y_test == b)
            out[f"MNIST {a}-{b}"] = (
                s.x_train[tr],
                (s.y_train[tr] == b).long(),
                s.x_test[te],
                (s.y_test[te] == b).long(),
            )
    if cfg.breast_cancer:
        s = load_dataset(
            "breast_cancer", seed=seed, val_fraction=0.0, test_fraction=cfg.test_fraction
        )
        out["breast cancer"] = (s.x_train, s.y_train, s.x_test, s.y_test)
    return out


def _two_class_scores(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``(N, 2)`` scores ``[0, f(x)]``: argmax is class 1 exactly when ``f(x) > 0`` (reference)."""

    def scores(x: Tensor) -> Tensor:
        f: Tensor = model(x)
        return torch.cat([torch.zeros_like(f), f], dim=1)

    return scores


class _TestAccuracy(Callback):
    """Test accuracy after every epoch (eval mode), for the curves; optional lambda schedule."""

    def __init__(
        self, x: Tensor, t: Tensor, device: torch.device, resampler: LambdaResampler | None
    ) -> None:
        self.x, self.t, self.device, self.resampler = x, t, device, resampler
        self.values: list[float] = []

    def on_epoch_begin(self, state: TrainState) -> None:
        if self.resampler is not None:
            self.resampler.step(state.epoch + 1)  # the reference's 1-based epoch

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        state.model.eval()
        with torch.no_grad():
            acc = accuracy(_two_class_scores(state.model), self.x, self.t, device=self.device)
        state.model.train()
        self.values.append(acc)
        logs["test_acc"] = acc


def _loss_fn(
    name: str, cfg: EnsLossConfig, seed: int, device: torch.device
) -> tuple[Callable[[Tensor, Tensor], Tensor], LambdaResampler | None]:
    if name == "BCE":
        return (lambda f, t: F.binary_cross_entropy_with_logits(f, t.to(f.dtype))), None
    if name == "hinge":
        return (lambda f, t: hinge_loss(f, t, validate=False)), None
    if name == "exponential":
        return (lambda f, t: exponential_loss(f, t, validate=False)), None
    ens = EnsLoss(
        lam=cfg.lam, generator=torch.Generator(device=device).manual_seed(seed), validate=False
    )
    res = None
    if cfg.lambda_period > 0:
        res = LambdaResampler(
            ens, cfg.lambda_period, generator=torch.Generator().manual_seed(seed + 1)
        )
    return ens, res


def _train_one(
    cfg: EnsLossConfig,
    name: str,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    seed: int,
    ctx: RunContext,
) -> tuple[float, float, list[float]]:
    """Train with loss ``name``; ``(train_acc, test_acc, test_acc_per_epoch)``."""
    x_tr, t_tr, x_te, t_te = data
    seed_everything(seed)  # the same initial weights for every loss of this seed (paired)
    model = tab_mlp(x_tr.shape[1], cfg.hidden, cfg.depth)
    loss_fn, resampler = _loss_fn(name, cfg, seed, ctx.device)

    def step(model: nn.Module, batch: Any, device: torch.device) -> Mapping[str, Tensor]:
        x, t = batch
        f = model(x.to(device))[:, 0]
        return {"loss": loss_fn(f, t.to(device))}

    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    # drop_last: BatchNorm cannot train on a last batch of one row (the reference keeps it)
    loader = make_loader(
        x_tr, t_tr, batch_size=cfg.batch_size, shuffle=True, seed=seed, drop_last=True
    )
    tracker = _TestAccuracy(x_te, t_te, ctx.device, resampler)
    fit(
        model,
        loader,
        opt,
        step_fn=step,
        epochs=cfg.epochs,
        device=ctx.device,
        scheduler=sched,
        callbacks=[tracker],
        grad_clip=cfg.exp_grad_clip if name == "exponential" else None,
        progress=False,
    )
    model.eval()
    with torch.no_grad():
        train_acc = accuracy(_two_class_scores(model), x_tr, t_tr, device=ctx.device)
    return train_acc, tracker.values[-1], tracker.values


def run(config: EnsLossConfig, ctx: RunContext) -> Result:
    """Every data set x loss x seed; rows, wins/ties/losses, the pooled check, curves."""
    losses = _parse_losses(config.losses)
    acc: dict[tuple[str, str, str], list[float]] = {}  # (dataset, loss, metric) -> per seed
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for seed in ctx.seeds:
        for ds, data in _datasets(config, seed).items():
            for name in losses:
                ctx.log.info("seed %d, %s: training with %s", seed, ds, name)
                tr, te, per_epoch = _train_one(config, name, data, seed, ctx)
                acc.setdefault((ds, name, "train_acc"), []).append(tr)
                acc.setdefault((ds, name, "test_acc"), []).append(te)
                acc.setdefault((ds, name, "gap"), []).append(tr - te)
                curves.setdefault(ds, {}).setdefault(name, []).append(per_epoch)
    datasets = list(curves)
    mnist = [d for d in datasets if d != "breast cancer"]  # the image pairs
    pool = "CIFAR2" if config.data_root else "MNIST2"
    rows: list[Row] = []
    for ds in datasets:
        for name in losses:
            for metric in ("test_acc", "train_acc", "gap"):
                rows.append(Row.from_values(f"{name} on {ds}", metric, acc[(ds, name, metric)]))
    if mnist:  # pooled over pairs: per seed, the mean over pairs
        for name in losses:
            for metric in ("test_acc", "gap"):
                per_seed = [
                    statistics.fmean(acc[(d, name, metric)][i] for d in mnist)
                    for i in range(len(ctx.seeds))
                ]
                rows.append(Row.from_values(f"{name} on {pool} pooled", metric, per_seed))
    verdicts: dict[str, dict[str, Any]] = {}
    for base in (b for b in losses if b != "EnsLoss"):
        count = {"wins": 0, "ties": 0, "losses": 0}
        per_ds: dict[str, Any] = {}
        for ds in datasets:
            ours, theirs = acc[(ds, "EnsLoss", "test_acc")], acc[(ds, base, "test_acc")]
            v, p_better, p_worse = paired_verdict(ours, theirs, config.alpha)
            count[{"win": "wins", "tie": "ties", "loss": "losses"}[v]] += 1
            per_ds[ds] = {
                "verdict": v,
                "mean_diff_pp": 100
                * statistics.fmean(a - b for a, b in zip(ours, theirs, strict=True)),
                "p_better": p_better,
                "p_worse": p_worse,
            }
            rows.append(
                Row.from_values(
                    f"EnsLoss - {base} on {ds}",
                    "test_acc_diff",
                    [a - b for a, b in zip(ours, theirs, strict=True)],
                )
            )
        for k, n in count.items():
            rows.append(Row.from_values(f"EnsLoss vs {base}", k, [float(n)]))
        verdicts[base] = {"counts": count, "per_dataset": per_ds}
    checks = []
    if mnist:
        diffs = [
            a - b
            for d in mnist
            for a, b in zip(
                acc[(d, "EnsLoss", "test_acc")], acc[(d, "BCE", "test_acc")], strict=True
            )
        ]
        mean = statistics.fmean(diffs)
        bce = verdicts["BCE"]["counts"]
        checks.append(
            Check(
                f"pooled over {pool} pairs x seeds: mean test accuracy EnsLoss - BCE >= 0",
                mean >= 0.0,
                f"{100 * mean:+.2f} pp over {len(diffs)} (pair, seed) runs; per data set vs BCE "
                f"(one-sided paired t-test, alpha {config.alpha}): {bce['wins']} wins / "
                f"{bce['ties']} ties / {bce['losses']} losses",
            )
        )
    epochs = [float(e + 1) for e in range(config.epochs)]
    plot = {}
    if mnist:
        plot["test_acc_pairs"] = Curve.from_seeds(
            f"{pool} test accuracy (mean over pairs)",
            "epoch",
            "test accuracy",
            epochs,
            {
                name: [
                    [
                        statistics.fmean(col)
                        for col in zip(*(curves[d][name][i] for d in mnist), strict=True)
                    ]
                    for i in range(len(ctx.seeds))
                ]
                for name in losses
            },
        )
    return Result(rows=rows, checks=checks, curves=plot, extra={"paired_tests": verdicts})


EXPERIMENT = Experiment(
    name="ensloss",
    description="EnsLoss vs BCE/hinge/exponential on hard MNIST digit pairs and breast cancer",
    config_cls=EnsLossConfig,
    run=run,
    budgets={
        "smoke": {"pairs": "4-9", "epochs": 2, "hidden": 32},
        # 3 pairs x 30 epochs (test accuracy is flat after about 30 in the spec's prototype)
        "quick": {"pairs": "4-9,3-5,7-9", "epochs": 30},
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
