"""The small reproduction (spec section 6, ``paperzoo run dhkd``): distillation on mnist1d.

Per seed: a 1-D CNN teacher is trained with the spec's recipe (SGD 0.05, momentum 0.9, weight
decay 5e-4, cosine, 40 epochs); its logits on the training set are computed once. Then an MLP
student (40-64-64 features, main head 64 -> 10) is trained with each objective of
:func:`paperzoo.dhkd.recipe.distillation_step` and the reference's step-decay SGD:

* ``ce``: cross-entropy only (no teacher);
* ``kd``: CE + KD (T = 4, alpha 1) on the main head;
* ``binary_kl``: CE + BinaryKL (T = 2, alpha 1) on the *same* head (the paper's negative result);
* ``dhkd``: CE on the main head + BinaryKL-Norm (T = 2, alpha 1) on a linear auxiliary head;
* ``dhkd_nl_ga``: the same with the non-linear auxiliary head and gradient alignment (the
  official CIFAR command line ``--dual_head --nonlinear --ga -r 1 -a 1 --BinaryKL_T 2``).

Reported per method: test top-1 of the main head, and end-of-training gradient cosines on the
whole training set: CE vs the distillation term on the main head's weights ``W`` (single-head
methods only) and on the last backbone layer. Checks (spec / issue): DHKD with the non-linear head
and alignment not below CE by more than 2 pooled standard errors, and its mean >= CE's; linear-aux
DHKD not below CE by more than 2 pooled standard errors.

At paper scale, ``--set data_root=DIR`` trains teacher and students on ``real_dataset``
(CIFAR-100 by default, or CIFAR-10, read by ``paperzoo.core.datasets``: the official split, pixels
in [0, 1], flattened) instead of mnist1d, with the same 1-D CNN teacher over the flattened pixels
and MLP students; ``n_train`` / ``n_test`` still cap the examples used.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.checks import UserError, check_choice, check_positive, check_positive_int
from paperzoo.core.data import make_loader
from paperzoo.core.datasets import load_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.dhkd.dhkd import gradient_cosine
from paperzoo.dhkd.heads import DualHeadClassifier, DualHeadOutput
from paperzoo.dhkd.losses import binary_kl, binary_kl_norm, kd_loss
from paperzoo.dhkd.recipe import Method, conv1d_teacher, distill, train_teacher

__all__ = ["EXPERIMENT", "METHOD_LABELS", "DHKDConfig", "run"]

#: experiment method key -> (recipe objective, auxiliary head, gradient alignment, label)
_METHODS: dict[str, tuple[Method, str, bool, str]] = {
    "ce": ("ce", "linear", False, "CE"),
    "kd": ("kd", "linear", False, "KD (CE + KD T=4)"),
    "binary_kl": ("binary_kl", "linear", False, "single head CE + BinaryKL"),
    "dhkd": ("dhkd", "linear", False, "DHKD linear aux"),
    "dhkd_nl_ga": ("dhkd", "nonlinear", True, "DHKD nonlinear aux + GA"),
}
METHOD_LABELS: dict[str, str] = {k: v[3] for k, v in _METHODS.items()}
"""Method key -> the row label in the result."""


@dataclass(frozen=True)
class DHKDConfig:
    """Config of the ``dhkd`` reproduction (spec section 6 defaults)."""

    threads: int | None = 1  # scoped by the run (paperzoo.core.experiments.run_experiment)
    dataset: str = "mnist1d"
    data_root: str = ""  # a folder with the paper's data set: real_dataset replaces dataset
    real_dataset: str = "cifar100"  # cifar100 or cifar10
    n_train: int = 4000
    n_test: int = 1000
    teacher_epochs: int = 40
    teacher_lr: float = 0.05
    teacher_channels: int = 64
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    hidden: tuple[int, ...] = (64, 64)
    temperature: float = 2.0
    kd_temperature: float = 4.0
    alpha: float = 1.0
    gamma: float = 1.0
    methods: tuple[str, ...] = ("ce", "kd", "binary_kl", "dhkd", "dhkd_nl_ga")

    def __post_init__(self) -> None:
        try:
            check_choice("dataset", self.dataset, ("mnist1d",))
            check_choice("real_dataset", self.real_dataset, ("cifar100", "cifar10"))
            for name in ("n_train", "n_test", "teacher_epochs", "teacher_channels", "epochs"):
                check_positive_int(name, getattr(self, name))
            check_positive_int("batch_size", self.batch_size)
            for name in ("teacher_lr", "lr", "temperature", "kd_temperature"):
                check_positive(name, getattr(self, name))
            for name in ("weight_decay", "alpha", "gamma"):
                check_positive(name, getattr(self, name), allow_zero=True)
            if not self.hidden:
                raise ValueError("hidden: expected at least one width, got ()")
            for i, w in enumerate(self.hidden):
                check_positive_int(f"hidden[{i}]", w)
            if not self.methods:
                raise ValueError("methods: expected at least one method, got ()")
            for m in self.methods:
                check_choice("methods", m, tuple(_METHODS))
            if self.threads is not None:
                check_positive_int("threads", self.threads)
        except (TypeError, ValueError) as err:
            raise UserError(str(err)) from err


def _student(cfg: DHKDConfig, in_dim: int, num_classes: int, aux: str) -> DualHeadClassifier:
    backbone = nn.Sequential(mlp([in_dim, *cfg.hidden]), nn.ReLU())
    return DualHeadClassifier(backbone, cfg.hidden[-1], num_classes, aux)  # type: ignore[arg-type]


def _last_backbone_layer(model: DualHeadClassifier) -> list[Tensor]:
    linears = [m for m in model.backbone.modules() if isinstance(m, nn.Linear)]
    return list(linears[-1].parameters())


def _cosines(
    model: DualHeadClassifier, method: str, cfg: DHKDConfig, x: Tensor, y: Tensor, zt: Tensor
) -> dict[str, float]:
    """End-of-training gradient cosines (CE vs the method's distillation term) on ``x``.

    Eval mode (dropout off, batch-norm running statistics) so the diagnostic is deterministic.
    """
    objective = _METHODS[method][0]
    if objective == "ce":
        return {}
    was = model.training, model.return_both
    model.eval()
    model.return_both = True
    out = model(x)
    assert isinstance(out, DualHeadOutput)
    ce = cfg.gamma * nn.functional.cross_entropy(out.main, y)
    if objective == "dhkd":
        kd = cfg.alpha * binary_kl_norm(out.aux, zt, cfg.temperature)
    elif objective == "kd":
        kd = cfg.alpha * kd_loss(out.main, zt, cfg.kd_temperature)
    else:
        kd = cfg.alpha * binary_kl(out.main, zt, cfg.temperature)
    res = {"grad_cos_backbone_last": float(gradient_cosine(ce, kd, _last_backbone_layer(model)))}
    if objective != "dhkd":  # one head shared by both terms
        weight = model.fc.weight
        assert isinstance(weight, Tensor)
        res["grad_cos_W"] = float(gradient_cosine(ce, kd, [weight]))
    model.train(was[0])
    model.return_both = was[1]
    return res


def _pooled_se(a: Row, b: Row) -> float:
    def var(r: Row) -> float:
        return statistics.variance(r.values) / len(r.values) if len(r.values) > 1 else 0.0

    return math.sqrt(var(a) + var(b))


def run(config: DHKDConfig, ctx: RunContext) -> Result:
    """Teacher, then every student objective, per seed; rows over seeds; checks from the rows."""
    split = load_split(
        config.dataset, data_root=config.data_root, real_dataset=config.real_dataset, seed=0,
        val_fraction=0.0, test_fraction=0.2,
    )  # fmt: skip
    x_tr, y_tr = split.x_train[: config.n_train], split.y_train[: config.n_train]
    x_te, y_te = split.x_test[: config.n_test], split.y_test[: config.n_test]
    k, dev = split.num_classes, ctx.device
    values: dict[tuple[str, str], list[float]] = {}
    losses: dict[str, list[list[float]]] = {}

    def add(method: str, metric: str, v: float) -> None:
        values.setdefault((method, metric), []).append(v)

    for seed in ctx.seeds:
        seed_everything(seed)
        teacher = conv1d_teacher(x_tr.shape[1], k, config.teacher_channels)
        loader = make_loader(x_tr, y_tr, batch_size=config.batch_size, shuffle=True, seed=seed)
        ctx.log.info("seed %d: teacher, %d epochs", seed, config.teacher_epochs)
        train_teacher(teacher, loader, config.teacher_epochs, lr=config.teacher_lr, device=dev)
        teacher.eval()
        with torch.no_grad():
            zt = teacher(x_tr.to(dev)).cpu()
        add("teacher (1-D CNN)", "test_top1", accuracy(teacher, x_te, y_te, device=dev))
        add("teacher (1-D CNN)", "train_logit_std", float(zt.std()))
        add("teacher (1-D CNN)", "train_logit_absmax", float(zt.abs().max()))
        for method in config.methods:
            objective, aux, ga, label = _METHODS[method]
            seed_everything(seed + 1)
            student = _student(config, x_tr.shape[1], k, aux)
            data = DataLoader(
                TensorDataset(x_tr, y_tr, zt),
                batch_size=config.batch_size,
                shuffle=True,
                generator=torch.Generator().manual_seed(seed + 2),
            )
            ctx.log.info("seed %d: %s, %d epochs", seed, label, config.epochs)
            res = distill(
                student,
                None,
                data,
                config.epochs,
                method=objective,
                temperature=config.temperature,
                kd_temperature=config.kd_temperature,
                alpha=config.alpha,
                gamma=config.gamma,
                grad_align=ga,
                lr=config.lr,
                weight_decay=config.weight_decay,
                teacher_logits_of=lambda b, d: b[2],
                device=dev,
            )
            losses.setdefault(label, []).append([h["train_loss"] for h in res.history])
            student.eval()
            add(label, "test_top1", accuracy(student, x_te, y_te, device=dev))
            cos = _cosines(student, method, config, x_tr.to(dev), y_tr.to(dev), zt.to(dev))
            for name, v in cos.items():
                add(label, name, v)

    rows = [Row.from_values(m, k_, v) for (m, k_), v in values.items()]
    epochs = [float(e + 1) for e in range(config.epochs)]
    return Result(
        rows=rows,
        checks=_checks(rows, config.methods),
        curves={
            "train_loss": Curve.from_seeds(
                "student training objective (mean over seeds)", "epoch", "loss", epochs, losses
            )
        },
        extra={"n_train": int(x_tr.shape[0]), "n_test": int(x_te.shape[0])},
    )


def _checks(rows: list[Row], methods: tuple[str, ...]) -> list[Check]:
    if "ce" not in methods:
        return []
    ce = find_row(rows, METHOD_LABELS["ce"], "test_top1")
    out: list[Check] = []
    for key in ("dhkd_nl_ga", "dhkd"):
        if key not in methods:
            continue
        r = find_row(rows, METHOD_LABELS[key], "test_top1")
        se = _pooled_se(r, ce)
        out.append(
            Check(
                f"{METHOD_LABELS[key]} not below CE by more than 2 pooled standard errors",
                r.mean >= ce.mean - 2 * se,
                f"{100 * r.mean:.2f} vs CE {100 * ce.mean:.2f} (2 SE = {200 * se:.2f} points)",
            )
        )
        if key == "dhkd_nl_ga":
            out.append(
                Check(
                    f"{METHOD_LABELS[key]} mean >= CE mean",
                    r.mean >= ce.mean,
                    f"{100 * r.mean:.2f} vs {100 * ce.mean:.2f}",
                )
            )
    return out


EXPERIMENT = Experiment(
    name="dhkd",
    description="DHKD vs CE, KD and single-head BinaryKL on mnist1d: 1-D CNN teacher, MLP student",
    config_cls=DHKDConfig,
    run=run,
    budgets={
        "smoke": {"n_train": 256, "n_test": 128, "teacher_epochs": 1, "epochs": 2},
        "quick": {},
        "full": {"teacher_epochs": 80, "epochs": 80},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
