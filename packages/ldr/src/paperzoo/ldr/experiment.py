"""Reproduction: robust losses on digits with label noise (the paper's tabular protocol, scaled down).

Protocol (official ``experiment.py`` defaults, spec section 6): sklearn digits, standardised, a 70/30
stratified split per seed; noise on the training labels only (uniform: with probability eta replace by
a uniformly drawn class; class-dependent: y -> (y + 1) mod K with probability eta); SGD with momentum
0.9, weight decay 5e-3, batch 64, 100 epochs, learning rate / 10 at epochs 50 and 75 (lr 1e-2, the
official default); losses CE, GCE (q = 0.7), MAE, Crammer-Singer (c = 1), LDR-KL (lambda = 10,
c = 0.1), ALDR-KL (lambda0 = 10, alpha = 2, c = 0.1); models: the official FFNN (two tanh hidden layers
of width min(d, K)) and a wider ReLU MLP 64-128-128-10. Clean test accuracy, final and best epoch.
Added for diagnosis (not in the paper): LDR-KL with ALDR-KL's 'l1' normalisation, which separates the
effect of the normalisation from that of the adaptive lambda_i.

All runs of one model are trained at once as a stack of independent networks (one batched matmul per
layer): every member has its own weights, labels, data order and loss, and because SGD with momentum
and weight decay acts element-wise and the members share no parameters, each member's trajectory is
exactly that of training it alone. Members of the same seed share the split, the initialisation and
the data order (paired comparison across losses and noise settings).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.data import load_dataset
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.ldr.baselines import gce_loss, mae_loss
from paperzoo.ldr.losses import ALDRKLLoss, crammer_singer_loss, ldr_kl_loss
from paperzoo.ldr.noise import class_dependent_label_noise, uniform_label_noise

__all__ = ["EXPERIMENT", "LDRConfig", "run"]

LOSS_NAMES: dict[str, str] = {
    "ce": "CE",
    "gce": "GCE (q=0.7)",
    "mae": "MAE",
    "cs": "CS (c=1)",
    "ldr_kl": "LDR-KL (λ=10, c=0.1)",
    "ldr_kl_l1": "LDR-KL l1-normalised (λ=10, c=0.1)",
    "aldr_kl": "ALDR-KL (λ0=10, α=2, c=0.1)",
}


@dataclass(frozen=True)
class LDRConfig:
    """Config of the ``ldr`` reproduction (defaults: the official tabular protocol)."""

    dataset: str = "digits"
    test_fraction: float = 0.3
    models: tuple[str, ...] = ("ffnn", "mlp")
    losses: tuple[str, ...] = ("ce", "gce", "mae", "cs", "ldr_kl", "ldr_kl_l1", "aldr_kl")
    settings: tuple[str, ...] = ("clean", "uniform:0.4", "uniform:0.6", "classdep:0.3")
    epochs: int = 100
    decay_epochs: tuple[int, ...] = (50, 75)
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-3
    batch_size: int = 64
    lam: float = 10.0
    lam0: float = 10.0
    alpha: float = 2.0
    margin: float = 0.1
    cs_margin: float = 1.0
    gce_q: float = 0.7
    threads: int = 1


def _parse_setting(setting: str) -> tuple[str, float]:
    if setting == "clean":
        return "clean", 0.0
    kind, _, rate = setting.partition(":")
    if kind not in ("uniform", "classdep") or not rate:
        raise ValueError(
            f"settings: expected 'clean', 'uniform:ETA' or 'classdep:ETA', got {setting!r}"
        )
    return kind, float(rate)


def _loss_fn(name: str, config: LDRConfig) -> Callable[[Tensor, Tensor], Tensor]:
    if name == "ce":
        return lambda f, y: F.cross_entropy(f, y, reduction="none")
    if name == "gce":
        return lambda f, y: gce_loss(f, y, config.gce_q, reduction="none", validate=False)
    if name == "mae":
        return lambda f, y: mae_loss(f, y, reduction="none", validate=False)
    if name == "cs":
        return lambda f, y: crammer_singer_loss(
            f, y, config.cs_margin, reduction="none", validate=False
        )
    if name == "ldr_kl":
        return lambda f, y: ldr_kl_loss(
            f, y, config.lam, config.margin, reduction="none", validate=False
        )
    if name == "ldr_kl_l1":
        return lambda f, y: ldr_kl_loss(
            f, y, config.lam, config.margin, "l1", reduction="none", validate=False
        )
    raise ValueError(f"losses: unknown loss {name!r}; known: {sorted(LOSS_NAMES)}")


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
    config: LDRConfig,
    ctx: RunContext,
    data: dict[str, Tensor],
    num_classes: int,
) -> dict[str, Any]:
    """Train every (loss, setting, seed) member of one model; return per-member metrics."""
    n_loss, n_set, n_seed = len(config.losses), len(config.settings), len(ctx.seeds)
    members = n_loss * n_set * n_seed
    x_tr, x_te, y_te = data["x_train"], data["x_test"], data["y_test"]  # (S,N,d) (S,Nt,d) (S,Nt)
    y_noisy, noisy_mask = data["y_noisy"], data["noisy"]  # (E,S,N)
    n_train, dim = x_tr.shape[1], x_tr.shape[2]
    hidden = [min(dim, num_classes)] * 2 if model == "ffnn" else [128, 128]
    inits = [torch.Generator().manual_seed(10_000 + s) for s in ctx.seeds]
    net = _StackedNet(
        [dim, *hidden, num_classes], "tanh" if model == "ffnn" else "relu", inits, n_loss * n_set
    )
    opt = torch.optim.SGD(
        net.params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(config.decay_epochs), gamma=0.1)

    seed_of = torch.arange(members) % n_seed
    set_of = (torch.arange(members) // n_seed) % n_set
    labels = y_noisy[set_of, seed_of]  # (M, N)
    block = n_set * n_seed
    aldr = None
    if "aldr_kl" in config.losses:
        aldr = ALDRKLLoss(
            block * n_train,
            config.lam0,
            config.alpha,
            config.margin,
            reduction="none",
            validate=False,
        )
    fns = {name: _loss_fn(name, config) for name in config.losses if name != "aldr_kl"}
    order_gens = [torch.Generator().manual_seed(20_000 + s) for s in ctx.seeds]
    test_acc = torch.zeros(config.epochs, members)
    x_test_m = x_te[seed_of]
    y_test_m = y_te[seed_of]
    for epoch in range(config.epochs):
        perms = torch.stack([torch.randperm(n_train, generator=g) for g in order_gens])[seed_of]
        for start in range(0, n_train, config.batch_size):
            idx = perms[:, start : start + config.batch_size]  # (M, B)
            xb = x_tr[seed_of.unsqueeze(1), idx]
            yb = labels.gather(1, idx)
            logits = net(xb)
            batch = idx.shape[1]
            total = logits.new_zeros(())
            for li, name in enumerate(config.losses):
                sl = slice(li * block, (li + 1) * block)
                f = logits[sl].reshape(-1, num_classes)
                y = yb[sl].reshape(-1)
                if name == "aldr_kl":
                    assert aldr is not None
                    rows = (torch.arange(block).unsqueeze(1) * n_train + idx[sl]).reshape(-1)
                    per = aldr(f, y, rows)
                else:
                    per = fns[name](f, y)
                total = total + per.reshape(block, batch).mean(dim=1).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            test_acc[epoch] = (net(x_test_m).argmax(dim=2) == y_test_m).float().mean(dim=1)
        if epoch % 25 == 0 or epoch == config.epochs - 1:
            ctx.log.info("%s epoch %d/%d", model, epoch + 1, config.epochs)
    with torch.no_grad():
        train_pred = net(x_tr[seed_of]).argmax(dim=2)
    fits_label = (train_pred == labels).float()
    noisy_m = noisy_mask[set_of, seed_of]
    out: dict[str, Any] = {
        "test_acc": test_acc,
        "fits_noisy": (fits_label * noisy_m).sum(1) / noisy_m.sum(1).clamp_min(1),
        "seed_of": seed_of,
        "set_of": set_of,
    }
    if aldr is not None:
        li = config.losses.index("aldr_kl")
        table = aldr.lambdas.reshape(block, n_train)
        mask = noisy_m[li * block : (li + 1) * block]
        lam_noisy = (table * mask).sum(1) / mask.sum(1).clamp_min(1)
        lam_clean = (table * ~mask).sum(1) / (~mask).sum(1).clamp_min(1)
        out["lam_noisy"], out["lam_clean"], out["has_noise"] = lam_noisy, lam_clean, mask.any(1)
    return out


def _prepare_data(config: LDRConfig, seeds: list[int]) -> tuple[dict[str, Tensor], int]:
    xs, ys, xts, yts, noisy_y, noisy = [], [], [], [], [], []
    num_classes = 0
    for seed in seeds:
        split = load_dataset(
            config.dataset, seed=seed, val_fraction=0.0, test_fraction=config.test_fraction
        )
        num_classes = split.num_classes
        mu, sd = split.x_train.mean(0), split.x_train.std(0)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        xs.append((split.x_train - mu) / sd)
        xts.append((split.x_test - mu) / sd)
        ys.append(split.y_train)
        yts.append(split.y_test)
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
    if len({x.shape[0] for x in xs}) != 1:
        raise ValueError("dataset: the per-seed splits must have equal sizes")
    data = {
        "x_train": torch.stack(xs),
        "x_test": torch.stack(xts),
        "y_test": torch.stack(yts),
        "y_noisy": torch.stack(noisy_y),
        "noisy": torch.stack(noisy),
    }
    return data, num_classes


def run(config: LDRConfig, ctx: RunContext) -> Result:
    """Train every loss x noise setting x seed x model; rows, honest checks and curves."""
    for name in config.losses:
        if name not in LOSS_NAMES:
            raise ValueError(f"losses: unknown loss {name!r}; known: {sorted(LOSS_NAMES)}")
    for model in config.models:
        if model not in ("ffnn", "mlp"):
            raise ValueError(f"models: expected 'ffnn' or 'mlp', got {model!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        data, num_classes = _prepare_data(config, ctx.seeds)
        results = {m: _train_model(m, config, ctx, data, num_classes) for m in config.models}
    finally:
        torch.set_num_threads(threads)
    return _summarise(config, ctx, results)


def _method(loss: str, model: str) -> str:
    return f"{LOSS_NAMES[loss]} [{model}]"


def _summarise(config: LDRConfig, ctx: RunContext, results: dict[str, dict[str, Any]]) -> Result:
    n_set, n_seed = len(config.settings), len(ctx.seeds)
    rows: list[Row] = []
    for model, res in results.items():
        acc: Tensor = res["test_acc"]
        for li, loss in enumerate(config.losses):
            for si, setting in enumerate(config.settings):
                start = (li * n_set + si) * n_seed
                cols = slice(start, start + n_seed)
                method = _method(loss, model)
                rows.append(Row.from_values(method, f"test_top1@{setting}", acc[-1, cols].tolist()))
                rows.append(
                    Row.from_values(
                        method, f"best_test_top1@{setting}", acc[:, cols].amax(0).tolist()
                    )
                )
                if setting != "clean":
                    rows.append(
                        Row.from_values(
                            method,
                            f"train_fits_noisy_label@{setting}",
                            res["fits_noisy"][cols].tolist(),
                        )
                    )
                if loss == "aldr_kl" and setting != "clean":
                    local = slice(si * n_seed, (si + 1) * n_seed)
                    rows.append(
                        Row.from_values(
                            method, f"mean_lambda_noisy@{setting}", res["lam_noisy"][local].tolist()
                        )
                    )
                    rows.append(
                        Row.from_values(
                            method, f"mean_lambda_clean@{setting}", res["lam_clean"][local].tolist()
                        )
                    )
    checks = _checks(config, ctx, rows, results)
    curves = _curves(config, ctx, results)
    return Result(rows=rows, checks=checks, curves=curves, extra={"num_seeds": n_seed})


def _mean(rows: list[Row], loss: str, model: str, metric: str) -> float:
    return find_row(rows, _method(loss, model), metric).mean


def _checks(
    config: LDRConfig, ctx: RunContext, rows: list[Row], results: dict[str, dict[str, Any]]
) -> list[Check]:
    checks: list[Check] = []
    have = set(config.losses)
    for model in results:
        if "clean" in config.settings and "ce" in have:
            ce = _mean(rows, "ce", model, "test_top1@clean")
            others = [n for n in ("gce", "cs", "ldr_kl", "aldr_kl") if n in have]
            gaps = {n: _mean(rows, n, model, "test_top1@clean") - ce for n in others}
            checks.append(
                Check(
                    f"[{model}] clean: CE-like losses within 2 points of CE",
                    all(abs(g) <= 0.02 for g in gaps.values()),
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
            res = results[model]
            lam_n, lam_c, has = res["lam_noisy"], res["lam_clean"], res["has_noise"]
            if bool(has.any()):
                lower = bool((lam_n[has] < lam_c[has]).all())
                checks.append(
                    Check(
                        f"[{model}] ALDR-KL: mean λ lower on noisy than on clean examples "
                        "(every noisy setting and seed)",
                        lower,
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
    config: LDRConfig, ctx: RunContext, results: dict[str, dict[str, Any]]
) -> dict[str, Curve]:
    n_set, n_seed = len(config.settings), len(ctx.seeds)
    curves: dict[str, Curve] = {}
    uniform = [
        (i, _parse_setting(s)[1])
        for i, s in enumerate(config.settings)
        if _parse_setting(s)[0] in ("clean", "uniform")
    ]
    for model, res in results.items():
        acc: Tensor = res["test_acc"]
        series: dict[str, list[float]] = {}
        for li, loss in enumerate(config.losses):
            series[LOSS_NAMES[loss]] = [
                float(acc[-1, (li * n_set + si) * n_seed : (li * n_set + si + 1) * n_seed].mean())
                for si, _ in uniform
            ]
        curves[f"accuracy_vs_noise_{model}"] = Curve(
            f"{model}: clean test top-1 vs uniform label noise (mean over {n_seed} seeds)",
            "uniform noise rate η",
            "test top-1 (final epoch)",
            [eta for _, eta in uniform],
            series,
        )
        if "uniform:0.6" in config.settings:
            si = config.settings.index("uniform:0.6")
            curves[f"test_top1_per_epoch_uniform06_{model}"] = Curve(
                f"{model}: test top-1 per epoch at 60% uniform noise",
                "epoch",
                "test top-1",
                [float(e + 1) for e in range(config.epochs)],
                {
                    LOSS_NAMES[loss]: acc[
                        :, (li * n_set + si) * n_seed : (li * n_set + si + 1) * n_seed
                    ]
                    .mean(1)
                    .tolist()
                    for li, loss in enumerate(config.losses)
                },
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
