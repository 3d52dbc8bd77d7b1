"""The core's own experiment, ``baseline``: an MLP trained with cross-entropy by :func:`fit`.

It is the model a new package copies: a typed config, budgets, per-seed runs through the core's parts,
rows aggregated over seeds, checks computed from the rows, and curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from paperzoo.core.checks import (
    UserError,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.training import fit

__all__ = ["EXPERIMENT", "BaselineConfig", "run"]


@dataclass(frozen=True)
class BaselineConfig:
    """Config of the ``baseline`` experiment.

    ``checkpoint_dir`` writes one checkpoint per seed after every epoch; ``resume`` continues an
    interrupted run from them (bit-identical on CPU to an uninterrupted one).
    """

    dataset: str = "digits"
    hidden: int = 128
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    min_accuracy: float = 0.9
    checkpoint_dir: str = ""
    resume: bool = False
    drop_last: bool = False  # drop the last incomplete training batch (per process under torchrun)
    threads: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("hidden", self.hidden)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_unit_interval("min_accuracy", self.min_accuracy)


def run(config: BaselineConfig, ctx: RunContext) -> Result:
    """Train the MLP once per seed (the seed also picks the split); report test top-1 against the majority class."""
    accs: list[float] = []
    majority: list[float] = []
    losses: list[list[float]] = []
    val_accs: list[list[float]] = []
    if config.resume and not config.checkpoint_dir:
        raise UserError("resume: needs checkpoint_dir (the folder the interrupted run wrote)")
    for seed in ctx.seeds:
        split = load_dataset(config.dataset, seed=seed)
        if split.task != "classification":
            raise ValueError(
                f"dataset: baseline needs a classification dataset, got {config.dataset!r}"
            )
        seed_everything(seed)
        model = mlp([split.num_features, config.hidden, config.hidden, split.num_classes])
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        train = make_loader(
            split.x_train,
            split.y_train,
            batch_size=config.batch_size,
            shuffle=True,
            seed=seed,
            drop_last=config.drop_last,
        )
        val = make_loader(split.x_val, split.y_val, batch_size=512, shuffle=False, evaluation=True)
        metrics = MetricCollection(
            {"top1": MulticlassAccuracy(num_classes=split.num_classes, average="micro")}
        )
        res = fit(
            model,
            train,
            opt,
            loss_fn=nn.functional.cross_entropy,
            epochs=config.epochs,
            device=ctx.device,
            val_loader=val,
            metrics=metrics,
            checkpoint_path=(
                f"{config.checkpoint_dir}/baseline-seed{seed}.pt" if config.checkpoint_dir else None
            ),
            resume=config.resume,
        )
        losses.append([h["train_loss"] for h in res.history])
        val_accs.append([h["val_top1"] for h in res.history])
        accs.append(accuracy(model, split.x_test, split.y_test, device=ctx.device))
        counts = torch.bincount(split.y_train, minlength=split.num_classes)
        majority.append(float((split.y_test == counts.argmax()).float().mean()))
        ctx.log.info("seed %d: test top-1 %.4f", seed, accs[-1])
    rows = [
        Row.from_values("mlp + cross-entropy", "test_top1", accs),
        Row.from_values("majority class", "test_top1", majority),
    ]
    m = find_row(rows, "mlp + cross-entropy", "test_top1")
    maj = find_row(rows, "majority class", "test_top1")
    checks = [
        Check(
            f"MLP test top-1 at least {config.min_accuracy}",
            m.mean >= config.min_accuracy,
            f"{m.mean:.4f} ± {m.std:.4f}",
        ),
        Check(
            "MLP beats the majority class by 50 points",
            m.mean - maj.mean >= 0.5,
            f"{m.mean:.4f} vs {maj.mean:.4f}",
        ),
    ]
    epochs = [float(e + 1) for e in range(config.epochs)]
    n = len(ctx.seeds)
    curves = {
        "train_loss": Curve(
            "baseline: training loss (mean over seeds)",
            "epoch",
            "cross-entropy",
            epochs,
            {"mlp": [sum(s[i] for s in losses) / n for i in range(config.epochs)]},
        ),
        "val_top1": Curve(
            "baseline: validation top-1 (mean over seeds)",
            "epoch",
            "top-1",
            epochs,
            {"mlp": [sum(s[i] for s in val_accs) / n for i in range(config.epochs)]},
        ),
    }
    return Result(rows=rows, checks=checks, curves=curves)


EXPERIMENT = Experiment(
    name="baseline",
    description="MLP + cross-entropy on digits, trained by paperzoo.core.training.fit",
    config_cls=BaselineConfig,
    run=run,
    budgets={
        "smoke": {"epochs": 2, "min_accuracy": 0.5},
        "quick": {"epochs": 30},
        "full": {"epochs": 100},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
