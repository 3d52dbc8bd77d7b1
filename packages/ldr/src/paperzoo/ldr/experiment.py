"""Reproduction: robust losses on digits with label noise (the paper's tabular protocol, scaled down).

Protocol (official ``experiment.py`` / README, spec section 6): sklearn digits, standardised, a 70/30
stratified train/test split per seed; noise on the training labels only (uniform: with probability eta
replace by a uniformly drawn class; class-dependent: y -> (y + 1) mod K with probability eta); SGD with
momentum 0.9, weight decay 5e-3, batch 64, 100 epochs, learning rate / 10 at epochs 50 and 75; models:
the official FFNN (two tanh hidden layers of width min(d, K)) and a wider ReLU MLP 64-128-128-10. Clean
test accuracy, final and best epoch.

Hyper-parameters are chosen as the official code does, on held-out training data with its noisy
labels (the official ``experiment.py`` runs 5-fold CV on the noisy training set and reports each
fold's model): ``val_fraction`` (20%, one fold) of each seed's training split is held out, every
candidate is trained on the rest, and for each (loss, model, noise setting, seed) the candidate with
the highest final-epoch accuracy on the held-out *noisy* labels is reported. The test split never
takes part in the choice. Grids: the official ones -- LDR-KL lambda and ALDR-KL lambda0 in
{0.1, 1, 10} (the list commented out in the official ``experiment.py``, which hard-codes 10),
Crammer-Singer margin in {0.1, 1, 10}, GCE q in {0.05, 0.7, 0.95}; CE and MAE have none. ALDR-KL uses
alpha = 2, c = 0.1, the official ``l1`` score normalisation and the official lambda update
(``exact_p=False``); LDR-KL uses c = 0.1 and the official ``softplus_mean`` normalisation. The
learning rate is chosen the same way, for every loss, from {1e-2 (the official ``experiment.py``
default), 1e-3 (the official README's commands)}.
Added for diagnosis (not in the paper): LDR-KL with ALDR-KL's 'l1' normalisation (same grid), which
separates the effect of the normalisation from that of the adaptive lambda_i.

All runs of one (model, learning rate) are trained at once as a stack of independent networks (one
batched matmul per layer): every member has its own weights, labels, data order and loss, and
because SGD with momentum and weight decay acts element-wise and the members share no parameters,
each member's trajectory is exactly that of training it alone. Members of the same seed share the
split, the initialisation and the data order (paired comparison across losses and noise settings).

At paper scale, ``--set data_root=DIR`` replaces ``dataset`` by ``real_dataset`` read by
``paperzoo.core.datasets``: a ``table`` (the paper's tabular sets, e.g. Letter, Vowel, ALOI, as
``DIR/train.csv``/``test.csv`` or ``.npz`` with arrays ``x``, ``y``), or CIFAR-10/100, MNIST or
Fashion-MNIST (flattened, for the same FFNN/MLP models); the official test split is used for every
seed (``test_fraction`` does not apply), the rest of the protocol is unchanged.

Why the loop is written here and not run through ``paperzoo.core.training.fit``: ``fit`` trains
one model on one loader, and this run trains hundreds of independent members at once (one batched
matmul per layer, a per-member batch order and an ALDR-KL table per block of members), which is
what makes the official grids fit the quick budget; the test
``test_stacked_members_train_exactly_as_if_trained_alone`` shows it equals training each alone.
Why one module (over 500 lines): it is one reproduction -- config, data with noisy validation,
the stacked training, the selection on validation and the rows, checks and curves of that one
protocol; the losses and baselines it races live in the library modules.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import (
    check_choice,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from paperzoo.core.datasets import load_split
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.ldr.baselines import gce_loss, mae_loss
from paperzoo.ldr.losses import ALDRKLLoss, crammer_singer_loss, ldr_kl_loss
from paperzoo.ldr.noise import class_dependent_label_noise, uniform_label_noise

__all__ = ["EXPERIMENT", "LDRConfig", "run"]

LOSS_NAMES: dict[str, str] = {
    "ce": "CE",
    "gce": "GCE",
    "mae": "MAE",
    "cs": "CS",
    "ldr_kl": "LDR-KL",
    "ldr_kl_l1": "LDR-KL l1-normalised",
    "aldr_kl": "ALDR-KL",
}
PARAM_SYMBOLS: dict[str, str] = {
    "gce": "q",
    "cs": "c",
    "ldr_kl": "λ",
    "ldr_kl_l1": "λ",
    "aldr_kl": "λ0",
}


_REAL_DATASETS = ("table", "cifar100", "cifar10", "mnist", "fashion-mnist")


@dataclass(frozen=True)
class LDRConfig:
    """Config of the ``ldr`` reproduction (defaults: the official tabular protocol)."""

    dataset: str = "digits"
    data_root: str = ""  # a folder with the paper's data set: real_dataset replaces dataset
    real_dataset: str = "table"  # table, cifar100, cifar10, mnist or fashion-mnist
    test_fraction: float = 0.3
    val_fraction: float = 0.2
    models: tuple[str, ...] = ("ffnn", "mlp")
    losses: tuple[str, ...] = ("ce", "gce", "mae", "cs", "ldr_kl", "ldr_kl_l1", "aldr_kl")
    settings: tuple[str, ...] = ("clean", "uniform:0.4", "uniform:0.6", "classdep:0.3")
    epochs: int = 100
    decay_epochs: tuple[int, ...] = (50, 75)
    lrs: tuple[float, ...] = (1e-2, 1e-3)
    momentum: float = 0.9
    weight_decay: float = 5e-3
    batch_size: int = 64
    lam_grid: tuple[float, ...] = (0.1, 1.0, 10.0)
    lam0_grid: tuple[float, ...] = (0.1, 1.0, 10.0)
    alpha: float = 2.0
    margin: float = 0.1
    exact_p: bool = False
    cs_margin_grid: tuple[float, ...] = (0.1, 1.0, 10.0)
    gce_q_grid: tuple[float, ...] = (0.05, 0.7, 0.95)
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        check_unit_interval("test_fraction", self.test_fraction, open_=True)
        check_unit_interval("val_fraction", self.val_fraction, open_=True)
        check_choice("real_dataset", self.real_dataset, _REAL_DATASETS)
        for model in self.models:
            check_choice("models", model, ("ffnn", "mlp"))
        for loss in self.losses:
            check_choice("losses", loss, tuple(LOSS_NAMES))
        for setting in self.settings:
            _parse_setting(setting)
        check_positive_int("epochs", self.epochs)
        for e in self.decay_epochs:
            check_positive_int("decay_epochs", e)
        if not self.lrs:
            raise ValueError("lrs: expected at least one learning rate, got none")
        for lr in self.lrs:
            check_positive("lrs", lr)
        check_unit_interval("momentum", self.momentum)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        grids = {
            "lam_grid": self.lam_grid,
            "lam0_grid": self.lam0_grid,
            "cs_margin_grid": self.cs_margin_grid,
            "gce_q_grid": self.gce_q_grid,
        }
        for name, values in grids.items():
            if not values:
                raise ValueError(f"{name}: expected at least one value, got none")
            for v in values:
                check_positive(name, v)
        for q in self.gce_q_grid:
            check_unit_interval("gce_q_grid", q)
        if self.alpha <= 1:
            raise ValueError(f"alpha: expected a value > 1, got {self.alpha}")
        check_positive("margin", self.margin, allow_zero=True)
        if self.threads is not None:
            check_positive_int("threads", self.threads)


@dataclass(frozen=True)
class _Variant:
    """One loss with one value of its hyper-parameter (``None`` for CE and MAE)."""

    loss: str
    param: float | None


def _variants(config: LDRConfig) -> list[_Variant]:
    grids: dict[str, tuple[float | None, ...]] = {
        "ce": (None,),
        "mae": (None,),
        "gce": config.gce_q_grid,
        "cs": config.cs_margin_grid,
        "ldr_kl": config.lam_grid,
        "ldr_kl_l1": config.lam_grid,
        "aldr_kl": config.lam0_grid,
    }
    return [_Variant(name, p) for name in config.losses for p in grids[name]]


def _parse_setting(setting: str) -> tuple[str, float]:
    """``"clean"`` -> ("clean", 0); ``"uniform:0.4"`` -> ("uniform", 0.4); ``"classdep:ETA"`` too."""
    if setting == "clean":
        return "clean", 0.0
    kind, _, rate = setting.partition(":")
    try:
        eta = float(rate)
    except ValueError:
        eta = math.nan
    if kind not in ("uniform", "classdep") or not 0.0 <= eta <= 1.0:
        raise ValueError(
            "settings: expected 'clean', 'uniform:ETA' or 'classdep:ETA' with ETA in [0, 1], "
            f"got {setting!r}"
        )
    return kind, eta


def _loss_fn(v: _Variant, config: LDRConfig) -> Callable[[Tensor, Tensor], Tensor]:
    p = 0.0 if v.param is None else float(v.param)
    if v.loss == "ce":
        return lambda f, y: F.cross_entropy(f, y, reduction="none")
    if v.loss == "gce":
        return lambda f, y: gce_loss(f, y, p, reduction="none", validate=False)
    if v.loss == "mae":
        return lambda f, y: mae_loss(f, y, reduction="none", validate=False)
    if v.loss == "cs":
        return lambda f, y: crammer_singer_loss(f, y, p, reduction="none", validate=False)
    if v.loss == "ldr_kl":
        return lambda f, y: ldr_kl_loss(f, y, p, config.margin, reduction="none", validate=False)
    if v.loss == "ldr_kl_l1":
        return lambda f, y: ldr_kl_loss(
            f, y, p, config.margin, "l1", reduction="none", validate=False
        )
    raise ValueError(f"losses: no plain loss function for {v.loss!r}")


def _aldr_module(lam0: float, rows: int, config: LDRConfig) -> ALDRKLLoss:
    """ALDR-KL as the official experiments run it: 'l1' normalisation, margin-free lambda update."""
    return ALDRKLLoss(
        rows,
        lam0,
        config.alpha,
        config.margin,
        normalize="l1",
        exact_p=config.exact_p,
        reduction="none",
        validate=False,
    )


def _select(val_acc: Tensor) -> Tensor:
    """Index of the best candidate along dim 0, from validation accuracy only.

    The rule of :func:`paperzoo.core.selection.argmax_first` (ties go to the earlier candidate, NaN
    never wins), vectorised over the trailing (setting, seed) cells of the stacked runs.
    """
    return torch.argmax(torch.nan_to_num(val_acc, nan=-math.inf), dim=0)


class _StackedNet:
    """M independent MLPs as stacked weights ``(M, in, out)``; nn.Linear's default initialisation."""

    def __init__(
        self, widths: list[int], act: str, inits: list[torch.Generator], repeat: int
    ) -> None:
        self.act = torch.tanh if act == "tanh" else torch.relu
        self.params: list[Tensor] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.stack(
                [(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in inits]
            )
            b = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in inits])
            # members are seed-major inside each (loss, setting) block: repeat the seed stack
            self.params += [w.repeat(repeat, 1, 1), b.repeat(repeat, 1, 1)]
        for p in self.params:
            p.requires_grad_(True)

    def __call__(self, x: Tensor) -> Tensor:
        h = x
        n_layers = len(self.params) // 2
        for i in range(n_layers):
            h = torch.baddbmm(self.params[2 * i + 1], h, self.params[2 * i])
            if i < n_layers - 1:
                h = self.act(h)
        return h


def _train_model(
    model: str,
    lr: float,
    variants: list[_Variant],
    config: LDRConfig,
    ctx: RunContext,
    data: dict[str, Tensor],
    num_classes: int,
) -> dict[str, Tensor]:
    """Train every (variant, setting, seed) member of one model at one learning rate.

    Returns tensors whose leading dims are (V, E, S) = (variants, settings, seeds): ``test_acc``
    (V, E, S, epochs) on the clean test labels, ``val_acc`` (V, E, S) at the last epoch on the
    held-out noisy labels, ``fits_noisy`` (V, E, S), and ``lam_noisy`` / ``lam_clean`` (V, E, S)
    (NaN for members that are not ALDR-KL).
    """
    n_var, n_set, n_seed = len(variants), len(config.settings), len(ctx.seeds)
    members = n_var * n_set * n_seed
    x_tr, x_va, x_te = data["x_fit"], data["x_val"], data["x_test"]  # (S, N, d)
    y_te = data["y_test"]  # (S, Nt)
    y_noisy, noisy_mask, y_val = data["y_fit"], data["noisy_fit"], data["y_val"]  # (E, S, N)
    n_train, dim = x_tr.shape[1], x_tr.shape[2]
    hidden = [min(dim, num_classes)] * 2 if model == "ffnn" else [128, 128]
    inits = [torch.Generator().manual_seed(10_000 + s) for s in ctx.seeds]
    net = _StackedNet(
        [dim, *hidden, num_classes], "tanh" if model == "ffnn" else "relu", inits, n_var * n_set
    )
    opt = torch.optim.SGD(
        net.params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(config.decay_epochs), gamma=0.1)

    seed_of = torch.arange(members) % n_seed
    set_of = (torch.arange(members) // n_seed) % n_set
    labels = y_noisy[set_of, seed_of]  # (M, N)
    block = n_set * n_seed
    aldr = {
        vi: _aldr_module(float(v.param or 0.0), block * n_train, config)
        for vi, v in enumerate(variants)
        if v.loss == "aldr_kl"
    }
    fns = {vi: _loss_fn(v, config) for vi, v in enumerate(variants) if v.loss != "aldr_kl"}
    order_gens = [torch.Generator().manual_seed(20_000 + s) for s in ctx.seeds]
    test_acc = torch.zeros(config.epochs, members)
    x_test_m, y_test_m = x_te[seed_of], y_te[seed_of]
    local_rows = torch.arange(block).unsqueeze(1) * n_train
    for epoch in range(config.epochs):
        perms = torch.stack([torch.randperm(n_train, generator=g) for g in order_gens])[seed_of]
        for start in range(0, n_train, config.batch_size):
            idx = perms[:, start : start + config.batch_size]  # (M, B)
            xb = x_tr[seed_of.unsqueeze(1), idx]
            yb = labels.gather(1, idx)
            logits = net(xb)
            batch = idx.shape[1]
            total = logits.new_zeros(())
            for vi in range(n_var):
                sl = slice(vi * block, (vi + 1) * block)
                f = logits[sl].reshape(-1, num_classes)
                y = yb[sl].reshape(-1)
                if vi in aldr:
                    per = aldr[vi](f, y, (local_rows + idx[sl]).reshape(-1))
                else:
                    per = fns[vi](f, y)
                total = total + per.reshape(block, batch).mean(dim=1).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            test_acc[epoch] = (net(x_test_m).argmax(dim=2) == y_test_m).float().mean(dim=1)
        if epoch % 25 == 0 or epoch == config.epochs - 1:
            ctx.log.info("%s lr=%g epoch %d/%d", model, lr, epoch + 1, config.epochs)
    with torch.no_grad():
        train_pred = net(x_tr[seed_of]).argmax(dim=2)
        val_pred = net(x_va[seed_of]).argmax(dim=2)
    fits_label = (train_pred == labels).float()
    noisy_m = noisy_mask[set_of, seed_of]
    val_acc = (val_pred == y_val[set_of, seed_of]).float().mean(dim=1)
    lam_noisy = torch.full((members,), math.nan)
    lam_clean = torch.full((members,), math.nan)
    for vi, module in aldr.items():
        table = module.lambdas.reshape(block, n_train)
        sl = slice(vi * block, (vi + 1) * block)
        mask = noisy_m[sl]
        lam_noisy[sl] = (table * mask).sum(1) / mask.sum(1).clamp_min(1)
        lam_clean[sl] = (table * ~mask).sum(1) / (~mask).sum(1).clamp_min(1)
        lam_noisy[sl][~mask.any(1)] = math.nan
    shape = (n_var, n_set, n_seed)
    return {
        "test_acc": test_acc.t().reshape(*shape, config.epochs),
        "val_acc": val_acc.reshape(shape),
        "fits_noisy": ((fits_label * noisy_m).sum(1) / noisy_m.sum(1).clamp_min(1)).reshape(shape),
        "lam_noisy": lam_noisy.reshape(shape),
        "lam_clean": lam_clean.reshape(shape),
    }


def _prepare_data(config: LDRConfig, seeds: list[int]) -> tuple[dict[str, Tensor], int]:
    """Per seed: split, standardise, add noise to the training labels, hold out a noisy val part."""
    xs, ys, xts, yts = [], [], [], []
    num_classes = 0
    for seed in seeds:
        split = load_split(
            config.dataset, data_root=config.data_root, real_dataset=config.real_dataset,
            seed=seed, val_fraction=0.0, test_fraction=config.test_fraction,
        )  # fmt: skip
        num_classes = split.num_classes
        mu, sd = split.x_train.mean(0), split.x_train.std(0)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        xs.append((split.x_train - mu) / sd)
        xts.append((split.x_test - mu) / sd)
        ys.append(split.y_train)
        yts.append(split.y_test)
    if len({x.shape[0] for x in xs}) != 1:
        raise ValueError("dataset: the per-seed splits must have equal sizes")
    n = xs[0].shape[0]
    n_val = max(1, round(config.val_fraction * n))
    if n_val >= n:
        raise ValueError("val_fraction leaves no training examples")
    parts = [torch.randperm(n, generator=torch.Generator().manual_seed(40_000 + s)) for s in seeds]
    val_idx = torch.stack([p[:n_val] for p in parts])  # (S, Nv)
    fit_idx = torch.stack([p[n_val:] for p in parts])  # (S, Nf)
    noisy_y, noisy = [], []
    for setting in config.settings:
        kind, eta = _parse_setting(setting)
        per_seed_y, per_seed_m = [], []
        for seed, y in zip(seeds, ys, strict=True):
            g = torch.Generator().manual_seed(30_000 + 97 * seed + round(1000 * eta))
            if kind == "classdep":
                ny, m = class_dependent_label_noise(y, num_classes, eta, g)
            else:
                ny, m = uniform_label_noise(y, num_classes, eta, g)
            per_seed_y.append(ny)
            per_seed_m.append(m)
        noisy_y.append(torch.stack(per_seed_y))
        noisy.append(torch.stack(per_seed_m))
    x_train, y_all, m_all = torch.stack(xs), torch.stack(noisy_y), torch.stack(noisy)  # (S|E,S, N)
    seed_rows = torch.arange(len(seeds)).unsqueeze(1)
    data = {
        "x_fit": x_train[seed_rows, fit_idx],
        "x_val": x_train[seed_rows, val_idx],
        "x_test": torch.stack(xts),
        "y_test": torch.stack(yts),
        "y_fit": y_all[:, seed_rows, fit_idx],
        "noisy_fit": m_all[:, seed_rows, fit_idx],
        "y_val": y_all[:, seed_rows, val_idx],
    }
    return data, num_classes


def run(config: LDRConfig, ctx: RunContext) -> Result:
    """Train every loss variant x lr x noise setting x seed x model; select on noisy validation."""
    variants = _variants(config)
    data, num_classes = _prepare_data(config, ctx.seeds)
    results: dict[str, dict[str, Tensor]] = {}
    for model in config.models:
        per_lr = [
            _train_model(model, lr, variants, config, ctx, data, num_classes) for lr in config.lrs
        ]
        # candidates: lr-major, then variant -> (C, E, S, ...)
        results[model] = {k: torch.cat([r[k] for r in per_lr]) for k in per_lr[0]}
    return _summarise(config, ctx, variants, results)


def _method(loss: str, model: str) -> str:
    return f"{LOSS_NAMES[loss]} [{model}]"


def _candidate_method(v: _Variant, lr: float, model: str) -> str:
    par = "" if v.param is None else f"{PARAM_SYMBOLS[v.loss]}={v.param:g}, "
    return f"{LOSS_NAMES[v.loss]} {par}lr={lr:g} [{model}]"


def _selected(
    config: LDRConfig, variants: list[_Variant], res: dict[str, Tensor]
) -> dict[str, dict[str, Tensor]]:
    """Per loss: the chosen candidate's metrics, each (E, S[, epochs]), chosen on val_acc only."""
    cands = [(lr, v) for lr in config.lrs for v in variants]
    out: dict[str, dict[str, Tensor]] = {}
    for loss in config.losses:
        ids = torch.tensor([c for c, (_, v) in enumerate(cands) if v.loss == loss])
        pick = ids[_select(res["val_acc"][ids])]  # (E, S) candidate index
        e_ix = torch.arange(pick.shape[0]).unsqueeze(1)
        s_ix = torch.arange(pick.shape[1]).unsqueeze(0)
        chosen = {k: t[pick, e_ix, s_ix] for k, t in res.items()}
        chosen["lr"] = torch.tensor([lr for lr, _ in cands], dtype=torch.float64)[pick]
        chosen["param"] = torch.tensor(
            [math.nan if v.param is None else v.param for _, v in cands], dtype=torch.float64
        )[pick]
        out[loss] = chosen
    return out


def _summarise(
    config: LDRConfig,
    ctx: RunContext,
    variants: list[_Variant],
    results: dict[str, dict[str, Tensor]],
) -> Result:
    cands = [(lr, v) for lr in config.lrs for v in variants]
    rows: list[Row] = []
    chosen_all: dict[str, dict[str, dict[str, Tensor]]] = {}
    for model, res in results.items():
        chosen_all[model] = chosen = _selected(config, variants, res)
        for loss in config.losses:
            sel, method = chosen[loss], _method(loss, model)
            for si, setting in enumerate(config.settings):
                noisy = setting != "clean"
                metrics: dict[str, Tensor] = {
                    f"test_top1@{setting}": sel["test_acc"][si, :, -1],
                    f"best_test_top1@{setting}": sel["test_acc"][si].amax(dim=-1),
                    f"val_top1_noisy_labels@{setting}": sel["val_acc"][si],
                    f"selected_lr@{setting}": sel["lr"][si],
                }
                if loss in PARAM_SYMBOLS:
                    metrics[f"selected_{PARAM_SYMBOLS[loss]}@{setting}"] = sel["param"][si]
                if noisy:
                    metrics[f"train_fits_noisy_label@{setting}"] = sel["fits_noisy"][si]
                if loss == "aldr_kl" and noisy:
                    metrics[f"mean_lambda_noisy@{setting}"] = sel["lam_noisy"][si]
                    metrics[f"mean_lambda_clean@{setting}"] = sel["lam_clean"][si]
                rows += [Row.from_values(method, k, v.tolist()) for k, v in metrics.items()]
        for c, (lr, v) in enumerate(cands):
            method = _candidate_method(v, lr, model)
            for si, setting in enumerate(config.settings):
                rows.append(
                    Row.from_values(
                        method, f"test_top1@{setting}", res["test_acc"][c, si, :, -1].tolist()
                    )
                )
                rows.append(
                    Row.from_values(
                        method, f"val_top1_noisy_labels@{setting}", res["val_acc"][c, si].tolist()
                    )
                )
                if setting != "clean":
                    rows.append(
                        Row.from_values(
                            method,
                            f"train_fits_noisy_label@{setting}",
                            res["fits_noisy"][c, si].tolist(),
                        )
                    )
                if v.loss == "aldr_kl" and setting != "clean":
                    for kind in ("noisy", "clean"):
                        rows.append(
                            Row.from_values(
                                method,
                                f"mean_lambda_{kind}@{setting}",
                                res[f"lam_{kind}"][c, si].tolist(),
                            )
                        )
    checks = _checks(config, rows, chosen_all)
    curves = _curves(config, ctx, chosen_all)
    extra = {
        "num_seeds": len(ctx.seeds),
        "selection": "per (loss, model, setting, seed): final-epoch accuracy on the held-out "
        f"{config.val_fraction:g} of the training split with its noisy labels",
    }
    return Result(rows=rows, checks=checks, curves=curves, extra=extra)


def _mean(rows: list[Row], loss: str, model: str, metric: str) -> float:
    return find_row(rows, _method(loss, model), metric).mean


def _checks(
    config: LDRConfig, rows: list[Row], chosen_all: dict[str, dict[str, dict[str, Tensor]]]
) -> list[Check]:
    checks: list[Check] = []
    have = set(config.losses)
    for model, chosen in chosen_all.items():
        if "clean" in config.settings and "ce" in have:
            ce = _mean(rows, "ce", model, "test_top1@clean")
            others = [n for n in ("gce", "cs", "ldr_kl", "aldr_kl") if n in have]
            gaps = {n: _mean(rows, n, model, "test_top1@clean") - ce for n in others}
            checks.append(
                Check(
                    f"[{model}] clean: no CE-like loss more than 2 points below CE",
                    all(g >= -0.02 for g in gaps.values()),
                    f"CE {ce:.4f}; " + ", ".join(f"{n} {g:+.4f}" for n, g in gaps.items()),
                )
            )
        high = "uniform:0.6"
        if high in config.settings and "ce" in have:
            ce = _mean(rows, "ce", model, f"test_top1@{high}")
            for name in ("ldr_kl", "aldr_kl"):
                if name in have:
                    v = _mean(rows, name, model, f"test_top1@{high}")
                    checks.append(
                        Check(
                            f"[{model}] uniform 0.6: {LOSS_NAMES[name]} at least 5 points above CE",
                            v - ce >= 0.05,
                            f"{v:.4f} vs CE {ce:.4f} ({v - ce:+.4f})",
                        )
                    )
            if "gce" in have and "ldr_kl" in have:
                g = _mean(rows, "gce", model, f"test_top1@{high}")
                ldr = _mean(rows, "ldr_kl", model, f"test_top1@{high}")
                checks.append(
                    Check(
                        f"[{model}] uniform 0.6: GCE between CE and LDR-KL",
                        min(ce, ldr) <= g <= max(ce, ldr),
                        f"CE {ce:.4f}, GCE {g:.4f}, LDR-KL {ldr:.4f}",
                    )
                )
        if "aldr_kl" in have and "ldr_kl" in have:
            a = [_mean(rows, "aldr_kl", model, f"test_top1@{s}") for s in config.settings]
            b = [_mean(rows, "ldr_kl", model, f"test_top1@{s}") for s in config.settings]
            checks.append(
                Check(
                    f"[{model}] ALDR-KL >= LDR-KL on average over the settings",
                    sum(a) >= sum(b),
                    f"{sum(a) / len(a):.4f} vs {sum(b) / len(b):.4f}",
                )
            )
        if "aldr_kl" in have:
            sel = chosen["aldr_kl"]
            lam_n, lam_c = sel["lam_noisy"], sel["lam_clean"]
            has = ~torch.isnan(lam_n)
            if bool(has.any()):
                checks.append(
                    Check(
                        f"[{model}] ALDR-KL (selected λ0): mean λ higher on noisy than on clean "
                        "examples (every noisy setting and seed)",
                        bool((lam_n[has] > lam_c[has]).all()),
                        "; ".join(
                            f"{s}: {_mean(rows, 'aldr_kl', model, f'mean_lambda_noisy@{s}'):.4f} vs "
                            f"{_mean(rows, 'aldr_kl', model, f'mean_lambda_clean@{s}'):.4f}"
                            for s in config.settings
                            if s != "clean"
                        ),
                    )
                )
    return checks


def _curves(
    config: LDRConfig, ctx: RunContext, chosen_all: dict[str, dict[str, dict[str, Tensor]]]
) -> dict[str, Curve]:
    """Seed mean with a min-max band over seeds (:meth:`Curve.from_seeds`) for the selected runs."""
    n_seed = len(ctx.seeds)
    curves: dict[str, Curve] = {}
    uniform = [
        (i, _parse_setting(s)[1])
        for i, s in enumerate(config.settings)
        if _parse_setting(s)[0] in ("clean", "uniform")
    ]
    for model, chosen in chosen_all.items():
        sis = [si for si, _ in uniform]
        curves[f"accuracy_vs_noise_{model}"] = Curve.from_seeds(
            f"{model}: test top-1 vs uniform noise ({n_seed} seed{'s' * (n_seed != 1)})",
            "uniform noise rate η",
            "test top-1 (final epoch)",
            [eta for _, eta in uniform],
            {
                LOSS_NAMES[loss]: chosen[loss]["test_acc"][sis, :, -1].t().tolist()
                for loss in config.losses
            },
        )
        if "uniform:0.6" in config.settings:
            si = config.settings.index("uniform:0.6")
            curves[f"test_top1_per_epoch_uniform06_{model}"] = Curve.from_seeds(
                f"{model}: test top-1 per epoch, 60% uniform noise",
                "epoch",
                "test top-1",
                [float(e + 1) for e in range(config.epochs)],
                {LOSS_NAMES[loss]: chosen[loss]["test_acc"][si].tolist() for loss in config.losses},
            )
    return curves


EXPERIMENT = Experiment(
    name="ldr",
    description="LDR-KL / ALDR-KL vs CE, GCE, MAE, CS on digits with uniform and pair-flip label noise",
    config_cls=LDRConfig,
    run=run,
    budgets={
        "smoke": {
            "epochs": 3,
            "decay_epochs": (2,),
            "models": ("ffnn",),
            "settings": ("clean", "uniform:0.6"),
        },
        "quick": {},
        "full": {
            "settings": (
                "clean",
                "uniform:0.3",
                "uniform:0.4",
                "uniform:0.6",
                "uniform:0.9",
                "classdep:0.1",
                "classdep:0.3",
                "classdep:0.5",
            ),
        },
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
