"""The small reproduction (spec section 6): SimCLR vs AMCL pre-training, kNN and linear probe.

Per seed and augmentation set, each method pre-trains an encoder (1-D CNN on MNIST-1D, or an MLP
on sklearn's 8x8 digits) with :class:`~paperzoo.amcl.simclr.AMCLSimCLR` through the core's
``fit``; the frozen backbone features of the held-out set are then scored by a cosine kNN
(k = 20) and a logistic-regression linear probe (scikit-learn), and the projections' mean pairwise
cosine measures collapse. Methods: ``SimCLR-t0.5``/``SimCLR-t0.1`` (one head, fixed tau,
NT-Xent), ``AMCL-C1``/``AMCL-C3`` (library defaults: logsumexp, tau in [0.05, 1]),
``AMCL-C3-max`` (the table's hardest-negative form) and ``AMCL-C3-official`` (the v2 preset).

At paper scale, ``--set data_root=DIR`` pre-trains on ``real_dataset`` (MNIST or Fashion-MNIST's
idx files, read by ``paperzoo.core.datasets``; images ``(28, 28)`` for the same five image
augmentations and the MLP encoder) instead of ``dataset``. CIFAR-10 / ImageNet, the paper's other
sets, need colour augmentations and a ResNet, which this package does not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from paperzoo.amcl.augment import AUGMENTATIONS, augment
from paperzoo.amcl.guard import mean_pairwise_cosine
from paperzoo.amcl.simclr import AMCLConfig, AMCLSimCLR
from paperzoo.core.checks import UserError, check_choice, check_positive, check_positive_int
from paperzoo.core.data import make_loader
from paperzoo.core.datasets import load_split
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.probes import knn_accuracy
from paperzoo.core.training import fit

__all__ = ["EXPERIMENT", "ReproConfig", "run", "sklearn_probe_accuracy"]

METHODS = ("SimCLR-t0.5", "SimCLR-t0.1", "AMCL-C1", "AMCL-C3", "AMCL-C3-max", "AMCL-C3-official")
AUG_SETS: dict[str, tuple[str, ...]] = {"five": AUGMENTATIONS, "one": ("translate",)}


@dataclass(frozen=True)
class ReproConfig:
    """Config of the ``amcl`` reproduction (spec section 6 defaults, scaled by the budgets).

    ``methods``: comma list of :data:`METHODS`; ``augs``: comma list of ``five``, ``one``.
    """

    dataset: str = "mnist1d"
    data_root: str = ""  # a folder with MNIST / Fashion-MNIST: real_dataset replaces dataset
    real_dataset: str = "mnist"  # mnist or fashion-mnist
    n_train: int = 4000
    n_test: int = 1000
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    channels: int = 64
    feat_dim: int = 128
    head_hidden: int = 256
    out_dim: int = 64
    beta: float = 0.1
    temp_form: str = "concat"
    temp_hidden: int = 128
    methods: str = "SimCLR-t0.5,SimCLR-t0.1,AMCL-C1,AMCL-C3"
    augs: str = "five,one"
    knn_k: int = 20
    collapse_cos: float = 0.6  # "no collapse": mean projection cosine below this
    margin: float = 0.03  # "AMCL mean >= SimCLR mean - 3 points"
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one clear error)."""
        check_choice("dataset", self.dataset, ("mnist1d", "digits"))
        check_choice("real_dataset", self.real_dataset, ("mnist", "fashion-mnist"))
        check_choice("temp_form", self.temp_form, ("concat", "dot"))
        check_positive_int("temp_hidden", self.temp_hidden)
        for name in (
            "n_train",
            "n_test",
            "epochs",
            "batch_size",
            "channels",
            "feat_dim",
            "head_hidden",
            "out_dim",
        ):
            check_positive_int(name, getattr(self, name))
        check_positive_int("knn_k", self.knn_k)
        check_positive("lr", self.lr)
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("collapse_cos", self.collapse_cos)
        check_positive("margin", self.margin, allow_zero=True)
        for m in self.method_list:
            if m not in METHODS:
                raise UserError(f"methods: unknown method {m!r}; available: {', '.join(METHODS)}")
        for a in self.aug_list:
            if a not in AUG_SETS:
                raise UserError(f"augs: unknown set {a!r}; available: {', '.join(AUG_SETS)}")
        if self.threads is not None:
            check_positive_int("threads", self.threads)

    @property
    def method_list(self) -> list[str]:
        """The methods to run, in order."""
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    @property
    def aug_list(self) -> list[str]:
        """The augmentation sets to run, in order."""
        return [a.strip() for a in self.augs.split(",") if a.strip()]


def method_config(method: str, cfg: ReproConfig) -> AMCLConfig:
    """The :class:`AMCLConfig` of one method name."""
    common = {"out_dim": cfg.out_dim, "head_hidden": cfg.head_hidden}
    if method.startswith("SimCLR"):
        tau = float(method.split("-t")[1])
        return AMCLConfig(num_heads=1, constant_tau=tau, beta=0.0, include_positive=True, **common)  # type: ignore[arg-type]
    if method == "AMCL-C3-official":
        return AMCLConfig.official(**common)
    heads = 1 if method == "AMCL-C1" else 3
    negatives = "max" if method.endswith("-max") else "logsumexp"
    return AMCLConfig(
        num_heads=heads,
        beta=cfg.beta,
        negatives=negatives,  # type: ignore[arg-type]
        form=cfg.temp_form,  # type: ignore[arg-type]
        temp_hidden=cfg.temp_hidden,
        **common,  # type: ignore[arg-type]
    )


class _Conv1dEncoder(nn.Module):
    """3 conv layers (``channels`` wide, kernel 5), global average pool, ``Linear -> feat_dim``."""

    def __init__(self, channels: int, feat_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Linear(channels, feat_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x.unsqueeze(1)).mean(-1))  # type: ignore[no-any-return]


def _backbone(cfg: ReproConfig, in_features: int) -> nn.Module:
    if cfg.dataset == "mnist1d" and not cfg.data_root:
        return _Conv1dEncoder(cfg.channels, cfg.feat_dim)
    return nn.Sequential(  # images (N, H, W) are flattened first
        nn.Flatten(),
        nn.Linear(in_features, 256),
        nn.ReLU(),
        nn.Linear(256, cfg.feat_dim),
        nn.ReLU(),
    )


def sklearn_probe_accuracy(train: Tensor, y_train: Tensor, test: Tensor, y_test: Tensor) -> float:
    """Logistic regression (scikit-learn, standardised features, C = 1) accuracy on ``test``: the
    protocol of the official lightly-based evaluation (the core's torch probe fits the same model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf.fit(train.numpy(), y_train.numpy())
    return float(np.mean(clf.predict(test.numpy()) == y_test.numpy()))


def _data(cfg: ReproConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    total = cfg.n_train + cfg.n_test
    split = load_split(
        cfg.dataset, data_root=cfg.data_root, real_dataset=cfg.real_dataset, seed=0,
        val_fraction=0.0, test_fraction=0.2,
    )  # fmt: skip
    x = torch.cat([split.x_train, split.x_test])
    y = torch.cat([split.y_train, split.y_test])
    if total > x.shape[0]:
        raise UserError(
            f"n_train + n_test: expected at most {x.shape[0]} for {split.name}, got {total}"
        )
    n_tr = min(cfg.n_train, split.x_train.shape[0])
    n_te = min(cfg.n_test, split.x_test.shape[0])
    images = len(split.input_shape) > 1  # (1, H, W) or (H, W): the augmentations take (N, H, W)
    xs = x.view(-1, *split.input_shape[-2:]) if images else x
    n0 = split.x_train.shape[0]
    return xs[:n_tr], y[:n_tr], xs[n0 : n0 + n_te], y[n0 : n0 + n_te]


def _pretrain_one(
    cfg: ReproConfig,
    method: str,
    kinds: tuple[str, ...],
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    seed: int,
    ctx: RunContext,
) -> dict[str, float]:
    x_tr, y_tr, x_te, y_te = data
    seed_everything(seed)
    model = AMCLSimCLR(_backbone(cfg, x_tr[0].numel()), cfg.feat_dim, method_config(method, cfg))
    gen = torch.Generator(device=ctx.device).manual_seed(seed + 7919)

    def step(
        m: nn.Module, batch: tuple[Tensor, Tensor], device: torch.device
    ) -> Mapping[str, Tensor]:
        xb = batch[0].to(device)
        loss, _ = m(augment(xb, kinds, gen), augment(xb, kinds, gen))
        return {"loss": loss}

    loader = make_loader(
        x_tr, y_tr, batch_size=cfg.batch_size, shuffle=True, seed=seed, drop_last=True
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fit(model, loader, opt, step_fn=step, epochs=cfg.epochs, device=ctx.device, progress=False)
    model.eval()
    with torch.no_grad():
        f_tr = model.backbone(x_tr.to(ctx.device)).cpu()
        f_te = model.backbone(x_te.to(ctx.device)).cpu()
        z_te = model.project(x_te.to(ctx.device))
        cos = float(mean_pairwise_cosine(z_te).max())
        xb = x_tr[: cfg.batch_size].to(ctx.device)
        model.loss(model.project(augment(xb, kinds, gen)), model.project(augment(xb, kinds, gen)))
        stats = {k: float(v.mean()) for k, v in model.loss.last_stats.items()}
    return {
        "knn_acc": knn_accuracy(f_tr, y_tr, f_te, y_te, k=cfg.knn_k, temperature=math.inf),
        "probe_acc": sklearn_probe_accuracy(f_tr, y_tr, f_te, y_te),
        "proj_cos": cos,
        "tau_pos": stats["tau_pos"],
        "tau_neg": stats["tau_neg"],
        "pos_at_min": stats["pos_at_min"],
    }


def run(cfg: ReproConfig, ctx: RunContext) -> Result:
    """Pre-train every method on every augmentation set for each seed; rows and checks."""
    data = _data(cfg)
    rows: list[Row] = []
    raw_x = data[0].reshape(data[0].shape[0], -1)
    raw_te = data[2].reshape(data[2].shape[0], -1)
    rows.append(
        Row.from_values(
            "raw-input",
            "knn_acc",
            [knn_accuracy(raw_x, data[1], raw_te, data[3], k=cfg.knn_k, temperature=math.inf)],
        )
    )
    for aug in cfg.aug_list:
        for method in cfg.method_list:
            per_seed = [_pretrain_one(cfg, method, AUG_SETS[aug], data, s, ctx) for s in ctx.seeds]
            for metric in per_seed[0]:
                rows.append(
                    Row.from_values(f"{method}@{aug}", metric, [r[metric] for r in per_seed])
                )
            ctx.log.info(
                "%s@%s knn %.3f", method, aug, find_row(rows, f"{method}@{aug}", "knn_acc").mean
            )
    checks: list[Check] = []
    extra: dict[str, float] = {}
    for aug in cfg.aug_list:
        base = [m for m in cfg.method_list if m.startswith("SimCLR-t0.5")] or [
            m for m in cfg.method_list if m.startswith("SimCLR")
        ]
        for method in [
            m
            for m in cfg.method_list
            if m.startswith("AMCL") and not m.endswith(("-max", "-official"))
        ]:
            cos = find_row(rows, f"{method}@{aug}", "proj_cos").mean
            checks.append(
                Check(
                    f"{method}@{aug} no collapse",
                    cos < cfg.collapse_cos,
                    f"mean projection cosine {cos:.3f} (< {cfg.collapse_cos})",
                )
            )
            if base:
                b = find_row(rows, f"{base[0]}@{aug}", "knn_acc").mean
                a = find_row(rows, f"{method}@{aug}", "knn_acc").mean
                extra[f"gain_knn_{method}_vs_{base[0]}@{aug}"] = a - b
                checks.append(
                    Check(
                        f"{method}@{aug} kNN >= {base[0]} - {cfg.margin:.2f}",
                        a >= b - cfg.margin,
                        f"{a:.4f} vs {b:.4f} (gain {a - b:+.4f}; the sign is reported, not asserted)",
                    )
                )
    return Result(rows=rows, checks=checks, extra=extra)


EXPERIMENT = Experiment(
    name="amcl",
    description="SimCLR vs AMCL (multi-head, pair-adaptive temperature) on MNIST-1D: kNN and linear probe",
    config_cls=ReproConfig,
    run=run,
    budgets={
        # quick/smoke: the v2 "dot" temperature network (one matmul per head); the paper's concat
        # network costs ~16x a SimCLR step at B = 256 on 2 cores (the full budget keeps it)
        "smoke": {
            "n_train": 512,
            "n_test": 256,
            "epochs": 1,
            "batch_size": 128,
            "methods": "SimCLR-t0.5,AMCL-C3",
            "augs": "five",
            "temp_form": "dot",
            "temp_hidden": 64,
        },
        "quick": {
            "epochs": 5,
            "methods": "SimCLR-t0.5,AMCL-C3",
            "augs": "five",
            "temp_form": "dot",
            "temp_hidden": 64,
        },
        "full": {},
    },
    seeds={"smoke": 1, "quick": 3, "full": 3},
)
