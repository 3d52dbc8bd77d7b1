"""The paper's small reproduction (spec section 6), three parts, each per seed:

(a) kernel estimation: relative MSE of the m-feature estimate of ``f(w^T x + b)`` (cos, sin, exp,
    Gaussian; the arc-cosine kernel for ReLU) on random pairs in the unit ball, against m; the
    log-log slope should be -1;
(b) adapters without pretrained weights: an MLP backbone 40-256-256 pre-trained on mnist1d
    classes 0-4 is frozen and adapted to classes 5-9 with a new head: head only, full fine-tune,
    Houlsby r = 16, LoRA r = 8, ReLU- and cos-SNNK adapters (no bottleneck, m = 8 and 16), each
    with its learning rate chosen on the validation split; test accuracy and trainable parameters;
(c) the fully bundled network fitted in closed form (depth 2, m = 512, prescale ``"l2"``, ridge by
    5-fold CV on the training rows) vs ridge regression on the raw features (same CV) vs a
    backprop MLP (128, 128), on scikit-learn's diabetes and Friedman #1 (1500 / 500 rows, noise
    1): test MSE and fit time.

``--set parts=bundle`` (comma list of ``kernel``, ``adapters``, ``bundle``) runs a subset.

This module is a little over 500 lines: it is one reproduction whose three parts share the
config, the seeds, the training helper and the row/check assembly; the layers, adapters and
bundling it races live in the library modules.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_positive, check_positive_int
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.selection import grid, select_on_validation
from paperzoo.core.training import fit

from .adapters import HoulsbyAdapter, add_adapters, add_lora, add_snnk_adapters
from .bundling import FullyBundledNetwork, ridge_cv, ridge_fit
from .features import FeatureRangeError, arccos_kernel
from .layers import trainable_parameters
from .urf import URF, activation_function

__all__ = [
    "ADAPTER_METHODS",
    "EXPERIMENT",
    "KERNELS",
    "SNNKConfig",
    "adapter_methods",
    "kernel_relative_mse",
    "run",
]

PARTS = ("kernel", "adapters", "bundle")
KERNELS = ("cos", "sin", "exp", "gaussian", "relu")
ADAPTER_METHODS = ("head", "full", "houlsby", "lora", "relu-snnk", "cos-snnk")
SNNK_MS = (8, 16)


def adapter_methods(cfg: SNNKConfig) -> list[tuple[str, str, int]]:
    """``(label, method, size)`` of part (b): size is r (Houlsby, LoRA) or m (SNNK adapters)."""
    out = [
        ("head only", "head", 0),
        ("full fine-tune", "full", 0),
        (f"Houlsby r={cfg.houlsby_r}", "houlsby", cfg.houlsby_r),
        (f"LoRA r={cfg.lora_r}", "lora", cfg.lora_r),
    ]
    for kind in ("ReLU", "cos"):
        out += [(f"{kind}-SNNK m={m}", f"{kind.lower()}-snnk", m) for m in SNNK_MS]
    return out


@dataclass(frozen=True)
class SNNKConfig:
    """Config of the ``snnk`` reproduction (spec section 6 defaults).

    ``parts``: comma list of ``kernel``, ``adapters``, ``bundle``. Kernel part: ``kernel_dim``
    (d), ``kernel_pairs`` random (x, w) pairs, ``kernel_ms`` feature counts, ``kernel_reps``
    independent estimates per m. Adapter part: ``hidden`` width, ``pretrain_epochs`` on classes
    0-4, ``adapt_epochs`` on 5-9, ``lrs`` (Adam learning rates, one chosen per method on the
    validation split), ``houlsby_r``, ``lora_r``. Bundle part: ``bundle_m``, ``bundle_depth``,
    ``friedman_train`` / ``friedman_test`` rows, ``friedman_noise``, ``mlp_epochs`` of the
    backprop baseline (128, 128). ``threads``: torch CPU threads while it runs (scoped by the
    core's ``run_experiment``; ``None`` leaves torch's choice).
    """

    parts: str = "kernel,adapters,bundle"
    kernel_dim: int = 8
    kernel_pairs: int = 32
    kernel_ms: tuple[int, ...] = (16, 64, 256, 1024, 4096)
    kernel_reps: int = 50
    hidden: int = 256
    pretrain_epochs: int = 30
    adapt_epochs: int = 30
    batch_size: int = 128
    lrs: tuple[float, ...] = (1e-3, 1e-2)
    houlsby_r: int = 16
    lora_r: int = 8
    bundle_m: int = 512
    bundle_depth: int = 2
    friedman_train: int = 1500
    friedman_test: int = 500
    friedman_noise: float = 1.0
    mlp_epochs: int = 200
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        for name in (
            "kernel_dim",
            "kernel_pairs",
            "kernel_reps",
            "hidden",
            "pretrain_epochs",
            "adapt_epochs",
            "batch_size",
            "houlsby_r",
            "lora_r",
            "bundle_m",
            "bundle_depth",
            "friedman_train",
            "friedman_test",
            "mlp_epochs",
        ):
            check_positive_int(name, getattr(self, name))
        parts = [p.strip() for p in self.parts.split(",") if p.strip()]
        if not parts or any(p not in PARTS for p in parts):
            raise ValueError(
                f"parts: expected a comma list of {', '.join(PARTS)}, got {self.parts!r}"
            )
        if len(self.kernel_ms) < 2:
            raise ValueError(
                f"kernel_ms: expected at least 2 feature counts, got {self.kernel_ms!r}"
            )
        for m in self.kernel_ms:
            check_positive_int("kernel_ms", m)
        if not self.lrs:
            raise ValueError("lrs: expected at least one learning rate, got ()")
        for lr in self.lrs:
            check_positive("lrs", lr)
        check_positive("friedman_noise", self.friedman_noise, allow_zero=True)
        if self.threads is not None:
            check_positive_int("threads", self.threads)

    @property
    def part_list(self) -> list[str]:
        """The parts to run, in order."""
        return [p.strip() for p in self.parts.split(",") if p.strip()]


# ----------------------------------------------------------------------------- (a) kernels


def kernel_relative_mse(kind: str, d: int, pairs: int, m: int, reps: int, seed: int) -> float:
    """Relative MSE ``mean((est - k)^2) / mean(k^2)`` of ``reps`` independent m-feature estimates
    of ``k(x, w)`` over ``pairs`` random pairs: ``f(w^T x + b)`` for a URF kind (``|x| <= 0.7``,
    ``|w| <= 0.6``, ``b ~ U(-0.5, 0.5)``: inside the Gaussian's finite-variance region), the
    arc-cosine kernel for ``"relu"`` (``|x|, |w| <= 1``). float64, ``prescale=None``."""
    gen = torch.Generator().manual_seed(seed)

    def ball(radius: float) -> Tensor:
        v = torch.randn(pairs, d, generator=gen, dtype=torch.float64)
        r = torch.rand(pairs, 1, generator=gen, dtype=torch.float64) ** (1.0 / d)
        out: Tensor = v / v.norm(dim=1, keepdim=True) * r * radius
        return out

    if kind == "relu":
        x, w = ball(1.0), ball(1.0)
        G = torch.randn(reps * m, d, generator=gen, dtype=torch.float64)
        prod = (x @ G.T).clamp_min(0) * (w @ G.T).clamp_min(0) / m  # (pairs, reps m)
        target = arccos_kernel(x, w)
    else:
        x, w = ball(0.7), ball(0.6)
        b = torch.rand(pairs, generator=gen, dtype=torch.float64) - 0.5
        urf = URF(kind, d, reps * m, seed=seed + 1).double()  # type: ignore[arg-type]
        prod = urf.input_features(x) * urf.param_features(w, b).T * reps  # (pairs, reps m)
        target = activation_function(kind)((x * w).sum(1) + b)  # type: ignore[arg-type]
    est = prod.view(pairs, reps, m).sum(-1)  # (pairs, reps)
    return float((est - target[:, None]).square().mean() / target.square().mean())


def _kernel_part(cfg: SNNKConfig, seeds: list[int]) -> tuple[list[Row], dict[str, Curve]]:
    rows: list[Row] = []
    per_seed: dict[str, list[list[float]]] = {}
    for kind in KERNELS:
        slopes = []
        for seed in seeds:
            mse = [
                kernel_relative_mse(
                    kind, cfg.kernel_dim, cfg.kernel_pairs, m, cfg.kernel_reps, 1000 * seed + i
                )
                for i, m in enumerate(cfg.kernel_ms)
            ]
            per_seed.setdefault(kind, []).append(mse)
            slopes.append(float(np.polyfit(np.log(cfg.kernel_ms), np.log(mse), 1)[0]))
        rows.append(Row.from_values(kind, "kernel_mse_loglog_slope", slopes))
        for j, m in enumerate(cfg.kernel_ms):
            rows.append(
                Row.from_values(kind, f"kernel_rel_mse_m{m}", [s[j] for s in per_seed[kind]])
            )
    curve = Curve.from_seeds(
        f"kernel estimate: relative MSE vs m (d = {cfg.kernel_dim}, {len(seeds)} seeds)",
        "m (log scale in the table)",
        "relative MSE",
        [float(m) for m in cfg.kernel_ms],
        per_seed,
    )
    return rows, {"kernel_mse": curve}


# ----------------------------------------------------------------------------- (b) adapters


def _step(model: nn.Module, batch: Any, device: torch.device) -> dict[str, Tensor]:
    x, y = batch
    return {"loss": F.cross_entropy(model(x.to(device)), y.to(device))}


def _train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    lr: float,
    epochs: int,
    cfg: SNNKConfig,
    seed: int,
    device: torch.device,
) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    loader = make_loader(x, y, batch_size=cfg.batch_size, shuffle=True, seed=seed)
    fit(model, loader, opt, step_fn=_step, epochs=epochs, device=device, progress=False)


def _adapted(
    method: str, size: int, backbone: nn.Sequential, cfg: SNNKConfig, seed: int
) -> nn.Sequential:
    """``backbone`` (Linear, ReLU, Linear, ReLU) + a new 5-class head, set up for ``method``."""
    torch.manual_seed(seed)
    model = nn.Sequential(*copy.deepcopy(backbone), nn.Linear(cfg.hidden, 5))
    head = model[4]
    if method == "full":  # the backbone copy arrives frozen: unfreeze all of it
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    where = ["1", "3"]  # after each hidden block, where Houlsby adapters go
    if method == "houlsby":
        add_adapters(model, where, lambda name, sub: HoulsbyAdapter(cfg.hidden, size))
    elif method == "lora":
        add_lora(model, ["0", "2"], rank=size)
    elif method in ("relu-snnk", "cos-snnk"):
        kind = "relu" if method == "relu-snnk" else "cos"
        add_snnk_adapters(model, where, num_features=size, d_model=cfg.hidden, kind=kind, seed=seed)
    else:  # head only
        for p in model.parameters():
            p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return model


def _fit_adapted(
    method: str,
    size: int,
    backbone: nn.Sequential,
    lr: float,
    data: tuple[Tensor, Tensor],
    cfg: SNNKConfig,
    seed: int,
    ctx: RunContext,
) -> nn.Sequential:
    model = _adapted(method, size, backbone, cfg, seed)
    _train(model, *data, lr, cfg.adapt_epochs, cfg, seed, ctx.device)
    return model


def _adapter_part(cfg: SNNKConfig, ctx: RunContext) -> tuple[list[Row], dict[str, Any]]:
    split = load_dataset("mnist1d", seed=0, val_fraction=0.15, test_fraction=0.2)

    def classes(x: Tensor, y: Tensor, lo: int) -> tuple[Tensor, Tensor]:
        keep = (y >= lo) & (y < lo + 5)
        return x[keep], y[keep] - lo

    pre_x, pre_y = classes(split.x_train, split.y_train, 0)
    tr = classes(split.x_train, split.y_train, 5)
    va = classes(split.x_val, split.y_val, 5)
    te = classes(split.x_test, split.y_test, 5)
    values: dict[tuple[str, str], list[float]] = {}
    diverged: list[str] = []  # candidates whose random features left the dtype's range
    for seed in ctx.seeds:
        seed_everything(seed)
        net = mlp([split.num_features, cfg.hidden, cfg.hidden, 5])
        _train(net, pre_x, pre_y, 1e-3, cfg.pretrain_epochs, cfg, seed, ctx.device)
        backbone = nn.Sequential(*list(net)[:4]).cpu()
        for p in backbone.parameters():
            p.requires_grad_(False)
        pre_acc = accuracy(net, *classes(split.x_test, split.y_test, 0), device=ctx.device)
        values.setdefault(("backbone (classes 0-4)", "test_acc"), []).append(pre_acc)
        for label, method, size in adapter_methods(cfg):
            trained: dict[float, nn.Sequential] = {}

            def score(
                params: dict[str, Any],
                method: str = method,
                label: str = label,
                size: int = size,
                seed: int = seed,
                backbone: nn.Sequential = backbone,
                trained: dict[float, nn.Sequential] = trained,
            ) -> float:
                try:
                    model = _fit_adapted(method, size, backbone, params["lr"], tr, cfg, seed, ctx)
                except FeatureRangeError as err:  # this candidate diverged: it cannot win
                    diverged.append(f"{label} lr={params['lr']:g}: {err}")
                    ctx.log.warning("seed %d %s lr=%g diverged: %s", seed, label, params["lr"], err)
                    return math.nan
                trained[params["lr"]] = model
                return accuracy(model, *va, device=ctx.device)

            sel = select_on_validation(grid(lr=cfg.lrs), score, log=ctx.log)
            if sel.best["lr"] not in trained:  # every learning rate diverged
                raise FeatureRangeError(f"seed {seed}, {label}: every lr diverged: {diverged}")
            model = trained[sel.best["lr"]]  # the run that was scored, not a retrain
            head = trainable_parameters(model[4])
            for metric, v in (
                ("test_acc", accuracy(model, *te, device=ctx.device)),
                ("val_acc", sel.best_score),
                ("lr", sel.best["lr"]),
                ("trainable_params", trainable_parameters(model)),
                ("trainable_params_without_head", trainable_parameters(model) - head),
            ):
                values.setdefault((label, metric), []).append(float(v))
            ctx.log.info("seed %d %s: test acc %.4f", seed, label, values[(label, "test_acc")][-1])
    rows = [Row.from_values(m, k, v) for (m, k), v in values.items()]
    extra = {
        "adapter_n": {
            "pretrain": len(pre_y),
            "train": len(tr[1]),
            "val": len(va[1]),
            "test": len(te[1]),
        },
        "diverged_candidates": diverged,  # learning rates whose features left the dtype's range
    }
    return rows, extra


# ----------------------------------------------------------------------------- (c) bundling


def _regression_sets(
    cfg: SNNKConfig, seed: int
) -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]:
    from sklearn.datasets import make_friedman1

    out: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
    dia = load_dataset("diabetes", seed=seed, val_fraction=0.0, test_fraction=0.25)
    out["diabetes"] = (
        dia.x_train.double(),
        dia.y_train.double(),
        dia.x_test.double(),
        dia.y_test.double(),
    )
    n = cfg.friedman_train + cfg.friedman_test
    X, y = make_friedman1(n_samples=n, n_features=10, noise=cfg.friedman_noise, random_state=seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    mu, sd = Xt[: cfg.friedman_train].mean(0), Xt[: cfg.friedman_train].std(0)
    Xt = (Xt - mu) / sd
    k = cfg.friedman_train
    out["friedman1"] = (Xt[:k], yt[:k], Xt[k:], yt[k:])
    return out


def _mlp_regressor(
    x: Tensor, y: Tensor, cfg: SNNKConfig, seed: int, device: torch.device
) -> nn.Module:
    """Backprop baseline: MLP (d, 128, 128, 1) on standardised targets (Adam 1e-3, batch 64)."""
    seed_everything(seed)
    mean, std = y.mean(), y.std()
    net = mlp([x.shape[1], 128, 128, 1]).double()
    loader = make_loader(x, ((y - mean) / std).unsqueeze(1), batch_size=64, shuffle=True, seed=seed)

    def step(model: nn.Module, batch: Any, dev: torch.device) -> dict[str, Tensor]:
        xb, yb = batch
        return {"loss": F.mse_loss(model(xb.to(dev)), yb.to(dev))}

    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    fit(net, loader, opt, step_fn=step, epochs=cfg.mlp_epochs, device=device, progress=False)
    net = net.cpu().eval()
    return nn.Sequential(net, _Affine(float(std), float(mean)))


class _Affine(nn.Module):
    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, z: Tensor) -> Tensor:
        out: Tensor = z * self.scale + self.shift
        return out


def _bundle_part(cfg: SNNKConfig, ctx: RunContext) -> list[Row]:
    values: dict[tuple[str, str], list[float]] = {}
    for seed in ctx.seeds:
        for name, (xtr, ytr, xte, yte) in _regression_sets(cfg, seed).items():

            def mse(pred: Tensor, yte: Tensor = yte) -> float:
                return float((pred.reshape(-1) - yte).square().mean())

            t0 = time.perf_counter()
            net = FullyBundledNetwork(
                xtr.shape[1], 1, cfg.bundle_m, cfg.bundle_depth, prescale="l2", seed=seed
            ).double()
            net.fit_closed_form(xtr, ytr, ridge="cv")
            t_bundle = time.perf_counter() - t0
            t0 = time.perf_counter()
            rho = ridge_cv(xtr, ytr.unsqueeze(1)).ridge
            omega, c = ridge_fit(xtr, ytr.unsqueeze(1), rho)
            t_ridge = time.perf_counter() - t0
            t0 = time.perf_counter()
            reg = _mlp_regressor(xtr, ytr, cfg, seed, ctx.device)
            t_mlp = time.perf_counter() - t0
            with torch.no_grad():
                results = {
                    f"bundled closed form (depth {cfg.bundle_depth}, m={cfg.bundle_m})": (
                        mse(net(xte)),
                        t_bundle,
                        net.ridge_,
                    ),
                    "ridge on raw features": (mse(xte @ omega + c), t_ridge, rho),
                    "backprop MLP (128, 128)": (mse(reg(xte)), t_mlp, None),
                }
            for method, (err, secs, ridge) in results.items():
                values.setdefault((method, f"{name}_test_mse"), []).append(err)
                values.setdefault((method, f"{name}_fit_s"), []).append(secs)
                if ridge is not None:
                    values.setdefault((method, f"{name}_cv_ridge"), []).append(float(ridge))
    return [Row.from_values(m, k, v) for (m, k), v in values.items()]


# ----------------------------------------------------------------------------- checks and run


def _checks(rows: list[Row], cfg: SNNKConfig, parts: list[str]) -> list[Check]:
    checks: list[Check] = []
    if "kernel" in parts:
        slopes = {k: find_row(rows, k, "kernel_mse_loglog_slope") for k in KERNELS}
        checks.append(
            Check(
                "(a) relative MSE falls as 1/m: log-log slope in [-1.2, -0.8] for every kernel",
                all(-1.2 <= r.mean <= -0.8 for r in slopes.values()),
                ", ".join(f"{k} {r.mean:.3f}" for k, r in slopes.items()),
            )
        )
    if "adapters" in parts:
        hou = find_row(rows, f"Houlsby r={cfg.houlsby_r}", "test_acc")
        head = find_row(rows, "head only", "test_acc")
        n = len(hou.values)
        for method, _kind, _size in adapter_methods(cfg)[4:]:
            r = find_row(rows, method, "test_acc")
            pooled_se = ((r.std**2 + hou.std**2) / max(n - 1, 1)) ** 0.5
            margin = max(0.02, 2 * pooled_se)
            checks.append(
                Check(
                    f"(b) {method}: accuracy >= Houlsby - max(2 pt, 2 pooled SE) and > head only",
                    r.mean >= hou.mean - margin and r.mean > head.mean,
                    f"{r.mean:.4f} vs Houlsby {hou.mean:.4f} (margin {margin:.4f}), head only {head.mean:.4f}",
                )
            )
    if "bundle" in parts:
        key = f"bundled closed form (depth {cfg.bundle_depth}, m={cfg.bundle_m})"
        b = find_row(rows, key, "friedman1_test_mse")
        r = find_row(rows, "ridge on raw features", "friedman1_test_mse")
        checks.append(
            Check(
                "(c) Friedman #1: bundled closed form has lower test MSE than ridge on raw features",
                b.mean < r.mean,
                f"{b.mean:.3f} vs {r.mean:.3f} (per seed {[round(v, 3) for v in b.values]} vs "
                f"{[round(v, 3) for v in r.values]})",
            )
        )
    return checks


def run(config: SNNKConfig, ctx: RunContext) -> Result:
    """The parts of ``config.parts``; rows over seeds; checks from the rows."""
    parts = config.part_list
    rows: list[Row] = []
    curves: dict[str, Curve] = {}
    extra: dict[str, Any] = {}
    if "kernel" in parts:
        r, c = _kernel_part(config, list(ctx.seeds))
        rows += r
        curves.update(c)
    if "adapters" in parts:
        r, e = _adapter_part(config, ctx)
        rows += r
        extra.update(e)
    if "bundle" in parts:
        rows += _bundle_part(config, ctx)
    return Result(rows=rows, checks=_checks(rows, config, parts), curves=curves, extra=extra)


EXPERIMENT = Experiment(
    name="snnk",
    description="SNNK: URF kernel error vs m, SNNK adapters vs Houlsby/LoRA, bundled closed form vs ridge",
    config_cls=SNNKConfig,
    run=run,
    budgets={
        "smoke": {
            "kernel_pairs": 4,
            "kernel_ms": (16, 64),
            "kernel_reps": 8,
            "hidden": 32,
            "pretrain_epochs": 1,
            "adapt_epochs": 1,
            "lrs": (1e-3,),
            "bundle_m": 32,
            "friedman_train": 200,
            "friedman_test": 100,
            "mlp_epochs": 2,
        },
        "quick": {"pretrain_epochs": 20, "adapt_epochs": 20, "mlp_epochs": 100},
        "full": {
            "kernel_reps": 200,
            "pretrain_epochs": 60,
            "adapt_epochs": 60,
            "lrs": (3e-4, 1e-3, 3e-3, 1e-2),
        },
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
