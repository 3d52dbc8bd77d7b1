"""The paper's small reproduction (spec section 6): ModHiFi-P pruning and ModHiFi-U unlearning of a
BN CNN with synthetic calibration data, no fine-tuning.

Per seed: train a VGG-like BN CNN (``conv-BN-ReLU`` x4, two max-pools, global average pool, FC)
with ``paperzoo.core.training.fit``; fit a PCA + Gaussian-mixture sampler on the training images
("distributional access") and draw the calibration set from it (no training image is touched at
edit time). Then

(a) pruning at equal channel budgets (remove ``prune_fracs`` of the input channels of conv2-conv4):
    ModHiFi-P (budget mode, compensation, BN recalibration) vs L2-norm filter pruning (+BN recal)
    vs random channels (+BN recal, averaged over ``random_masks`` masks), plus ModHiFi without
    compensation and without BN recalibration; test accuracy;
(b) unlearning (each class of ``forget_classes``, ``n_forget`` synthetic samples of that class from
    a class-conditional mixture, the last ``unlearn_layers`` convs, ``forget_fracs`` swept):
    ModHiFi-U vs random zeroing of as many slices; forget-class and retain accuracy drops.

Data: sklearn digits (quick; the spec's fallback), the bundled MNIST-5000 (full), or CIFAR-10 from
``data_root`` (the paper's CIFAR-10 data set, read by ``paperzoo.core.datasets``).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import UserError, check_choice, check_positive_int
from paperzoo.core.data import load_dataset, make_loader
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.training import fit
from paperzoo.modhifi.calibration import recalibrate_batchnorm
from paperzoo.modhifi.pruning import ModHiFiPruner, l2_channel_scores, mask_input_channels
from paperzoo.modhifi.synthetic import GaussianMixtureSampler
from paperzoo.modhifi.unlearning import ModHiFiUnlearner, edit_slices, random_slices

__all__ = ["EXPERIMENT", "ModHiFiConfig", "bn_cnn", "run"]

PRUNE_METHODS = ("ModHiFi", "ModHiFi (no comp)", "ModHiFi (no BN recal)", "L2", "random")


@dataclass(frozen=True)
class ModHiFiConfig:
    """Config of the ``modhifi`` reproduction (spec section 6 defaults, digits-sized).

    ``widths``: the four conv widths; ``prune_fracs``: shares of conv2-conv4 input channels
    removed; ``random_masks``: random-pruning masks per seed; ``forget_fracs``: the unlearning
    fraction ``q`` swept; ``random_draws``: random-zeroing draws per (class, q); ``data_root``: a
    folder with CIFAR-10's binary version (then ``dataset`` must be ``cifar10``); ``n_train``:
    training images used from CIFAR-10 (0 = all). ``threads``: torch CPU threads (scoped by the run).
    """

    dataset: str = "digits"
    widths: tuple[int, ...] = (16, 32, 32, 64)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    n_synthetic: int = 600
    n_pca: int = 40
    n_mix: int = 10
    n_mix_class: int = 3
    prune_fracs: tuple[float, ...] = (0.5, 0.75)
    random_masks: int = 5
    forget_classes: tuple[int, ...] = (0, 3, 8)
    n_forget: int = 200
    forget_fracs: tuple[float, ...] = (0.02, 0.05, 0.10)
    unlearn_layers: int = 2
    random_draws: int = 5
    n_train: int = 10000
    data_root: str = ""
    threads: int | None = 1

    def __post_init__(self) -> None:
        """Check every field (a bad ``--set`` value is one ``paperzoo: error:`` line)."""
        check_choice("dataset", self.dataset, ("digits", "mnist5k", "cifar10"))
        if len(self.widths) != 4:
            raise UserError(f"widths: expected 4 conv widths, got {self.widths!r}")
        for w in self.widths:
            check_positive_int("widths", w)
        for name in (
            "epochs",
            "batch_size",
            "n_synthetic",
            "n_pca",
            "n_mix",
            "n_mix_class",
            "random_masks",
            "n_forget",
            "random_draws",
        ):
            check_positive_int(name, getattr(self, name))
        check_positive_int("n_train", self.n_train, minimum=0)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"lr: expected a finite value > 0, got {self.lr!r}")
        for f in self.prune_fracs:
            if not 0.0 < f < 1.0:
                raise UserError(f"prune_fracs: expected values in (0, 1), got {self.prune_fracs!r}")
        for f in self.forget_fracs:
            if not 0.0 < f <= 1.0:
                raise UserError(f"forget_fracs: expected values in (0, 1], got {self.forget_fracs}")
        if not self.prune_fracs and not self.forget_fracs:
            raise UserError("prune_fracs, forget_fracs: expected at least one of them non-empty")
        if not 1 <= self.unlearn_layers <= 4:
            raise UserError(f"unlearn_layers: expected 1..4, got {self.unlearn_layers}")
        if any(c < 0 for c in self.forget_classes):
            raise UserError(
                f"forget_classes: expected class indices >= 0, got {self.forget_classes}"
            )
        if (self.dataset == "cifar10") != bool(self.data_root):
            raise UserError("dataset, data_root: cifar10 needs data_root (and data_root cifar10)")
        if self.threads is not None:
            check_positive_int("threads", self.threads)


def bn_cnn(in_channels: int, widths: Sequence[int], num_classes: int) -> nn.Sequential:
    """The spec's VGG-like BN CNN: ``conv{k}-bn{k}-relu{k}`` for k = 1..4 (3x3, padding 1), a
    2x2 max-pool after conv2 and conv3, global average pooling and ``fc``: ``(N, C, H, W) -> (N, K)``."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = in_channels
    for k, w in enumerate(widths, start=1):
        layers[f"conv{k}"] = nn.Conv2d(c_in, w, 3, padding=1)
        layers[f"bn{k}"] = nn.BatchNorm2d(w)
        layers[f"relu{k}"] = nn.ReLU()
        if k in (2, 3):
            layers[f"pool{k}"] = nn.MaxPool2d(2)
        c_in = w
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(c_in, num_classes)
    return nn.Sequential(layers)


def _data(cfg: ModHiFiConfig, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """``x_train, y_train, x_test, y_test`` as images in ``[0, 1]`` and the class count."""
    if cfg.dataset == "cifar10":
        from paperzoo.core.datasets import load_real_dataset

        def to_float(u8: Tensor) -> Tensor:
            return u8.float() / 255.0

        out: list[Tensor] = []
        for split in ("train", "test"):
            ds = load_real_dataset(
                "cifar10", cfg.data_root, split=split, transform=to_float, augment=False
            )
            n = len(ds) if split == "test" or cfg.n_train == 0 else min(cfg.n_train, len(ds))
            items = [ds.dataset[i] for i in range(n)]
            out += [torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])]
        return out[0], out[1], out[2], out[3], 10
    sp = load_dataset(cfg.dataset, seed=seed)
    shape = sp.input_shape
    return (
        sp.x_train.reshape(-1, *shape),
        sp.y_train,
        sp.x_test.reshape(-1, *shape),
        sp.y_test,
        sp.num_classes,
    )


def _train(
    cfg: ModHiFiConfig, x: Tensor, y: Tensor, k: int, seed: int, dev: torch.device
) -> nn.Module:
    seed_everything(seed)
    model = bn_cnn(x.shape[1], cfg.widths, k)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loader = make_loader(x, y, batch_size=cfg.batch_size, shuffle=True, seed=seed)

    def step(m: nn.Module, batch: tuple[Tensor, Tensor], d: torch.device) -> dict[str, Tensor]:
        xb, yb = batch[0].to(d), batch[1].to(d)
        return {"loss": F.cross_entropy(m(xb), yb)}

    fit(
        model,
        loader,
        opt,
        step_fn=step,
        epochs=cfg.epochs,
        device=dev,
        scheduler=sched,
        progress=False,
    )
    return model.eval()


def _se_gap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """``(mean(a) - mean(b), pooled standard error)`` with per-group sample variances."""

    def var(v: Sequence[float]) -> float:
        return statistics.variance(v) if len(v) > 1 else 0.0

    se = math.sqrt(var(a) / len(a) + var(b) / len(b))
    return statistics.fmean(a) - statistics.fmean(b), se


def _prune(
    cfg: ModHiFiConfig,
    base: nn.Module,
    calib: Tensor,
    frac: float,
    xt: Tensor,
    yt: Tensor,
    seed: int,
    dev: torch.device,
) -> dict[str, float]:
    layers = ["conv2", "conv3", "conv4"]
    budgets = [max(1, round(w * (1 - frac))) for w in cfg.widths[:3]]
    acc: dict[str, float] = {}
    variants = {
        "ModHiFi": {},
        "ModHiFi (no comp)": {"compensate": False},
        "ModHiFi (no BN recal)": {"recalibrate_bn": False},
    }
    for name, kw in variants.items():
        model = copy.deepcopy(base)
        pruner = ModHiFiPruner(model, layers, budget=budgets, **kw)  # type: ignore[arg-type]
        pruner.fit(calib)
        acc[name] = accuracy(pruner.apply(), xt, yt, device=dev)
    model = copy.deepcopy(base)
    for nm, b in zip(layers, budgets, strict=True):
        keep = torch.zeros(l2_channel_scores(model, nm).numel(), dtype=torch.bool)
        keep[l2_channel_scores(model, nm).topk(b).indices] = True
        mask_input_channels(model.get_submodule(nm), keep.to(dev))
    acc["L2"] = accuracy(recalibrate_batchnorm(model, calib), xt, yt, device=dev)
    g = torch.Generator().manual_seed(10_000 + seed)
    rand = []
    for _ in range(cfg.random_masks):
        model = copy.deepcopy(base)
        for nm, b, w in zip(layers, budgets, cfg.widths[:3], strict=True):
            keep = torch.zeros(w, dtype=torch.bool)
            keep[torch.randperm(w, generator=g)[:b]] = True
            mask_input_channels(model.get_submodule(nm), keep.to(dev))
        rand.append(accuracy(recalibrate_batchnorm(model, calib), xt, yt, device=dev))
    acc["random"] = statistics.fmean(rand)
    return acc


def _class_acc(
    model: nn.Module, xt: Tensor, yt: Tensor, cls: int, dev: torch.device
) -> tuple[float, float]:
    f = yt == cls
    return accuracy(model, xt[f], yt[f], device=dev), accuracy(model, xt[~f], yt[~f], device=dev)


def _unlearn(
    cfg: ModHiFiConfig,
    base: nn.Module,
    sampler_x: Tensor,
    ytr: Tensor,
    xt: Tensor,
    yt: Tensor,
    seed: int,
    dev: torch.device,
) -> dict[tuple[str, float], list[float]]:
    """``{(metric, q): [value per forget class]}`` for the forget/retain drops."""
    layers = [f"conv{k}" for k in range(5 - cfg.unlearn_layers, 5)]
    out: dict[tuple[str, float], list[float]] = {}
    g = torch.Generator().manual_seed(20_000 + seed)
    for cls in cfg.forget_classes:
        f0, r0 = _class_acc(base, xt, yt, cls, dev)
        sampler = GaussianMixtureSampler(cfg.n_pca, cfg.n_mix_class, seed=seed)
        forget = sampler.fit(sampler_x[ytr == cls]).sample(cfg.n_forget, seed=seed + 1).to(dev)
        for q in cfg.forget_fracs:
            model = copy.deepcopy(base)
            u = ModHiFiUnlearner(model, layers, fraction=q)
            u.fit(forget)
            f1, r1 = _class_acc(u.apply(), xt, yt, cls, dev)
            rf, rr = [], []
            for _ in range(cfg.random_draws):
                model = copy.deepcopy(base)
                for nm in layers:
                    layer = model.get_submodule(nm)
                    assert isinstance(layer, nn.Conv2d)
                    c_out, n = layer.weight.shape[:2]
                    edit_slices(layer, random_slices(c_out, n, q, generator=g))
                fr, rt = _class_acc(model, xt, yt, cls, dev)
                rf.append(f0 - fr)
                rr.append(r0 - rt)
            for key, v in (
                ("forget_drop", f0 - f1),
                ("retain_drop", r0 - r1),
                ("random_forget_drop", statistics.fmean(rf)),
                ("random_retain_drop", statistics.fmean(rr)),
                ("forget_acc", f1),
                ("retain_acc", r1),
            ):
                out.setdefault((key, q), []).append(v)
    return out


def run(cfg: ModHiFiConfig, ctx: RunContext) -> Result:
    """Run the reproduction over ``ctx.seeds``; see the module docstring."""
    dev = ctx.device
    per_seed: dict[tuple[str, str], list[float]] = {}

    def add(method: str, metric: str, v: float) -> None:
        per_seed.setdefault((method, metric), []).append(v)

    times: dict[str, float] = {"prune_s": 0.0, "unlearn_s": 0.0}
    for seed in ctx.seeds:
        xtr, ytr, xt, yt, k = _data(cfg, seed)
        if any(c >= k for c in cfg.forget_classes):
            raise UserError(f"forget_classes: expected classes < {k}, got {cfg.forget_classes}")
        base = _train(cfg, xtr, ytr, k, seed, dev)
        add("base", "test_acc", accuracy(base, xt, yt, device=dev))
        calib = (
            GaussianMixtureSampler(cfg.n_pca, cfg.n_mix, seed=seed)
            .fit(xtr)
            .sample(cfg.n_synthetic, seed=seed + 1)
            .to(dev)
        )
        t0 = time.perf_counter()
        for frac in cfg.prune_fracs:
            for m, v in _prune(cfg, base, calib, frac, xt, yt, seed, dev).items():
                add(m, f"test_acc@prune{frac:g}", v)
        t1 = time.perf_counter()
        if cfg.forget_fracs and cfg.forget_classes:
            for (metric, q), vals in _unlearn(cfg, base, xtr, ytr, xt, yt, seed, dev).items():
                add("unlearn", f"{metric}@q{q:g}", statistics.fmean(vals))
        times["prune_s"] += t1 - t0
        times["unlearn_s"] += time.perf_counter() - t1
        ctx.log.info("seed %d done", seed)
    rows = [Row.from_values(m, metric, v) for (m, metric), v in per_seed.items()]
    checks: list[Check] = []
    for frac in cfg.prune_fracs:
        metric = f"test_acc@prune{frac:g}"
        ours = find_row(rows, "ModHiFi", metric).values
        for other in ("L2", "random"):
            gap, se = _se_gap(ours, find_row(rows, other, metric).values)
            checks.append(
                Check(
                    f"ModHiFi above {other} at {frac:.0%} removal by > 2 pooled SE",
                    gap > 2 * se,
                    f"gap {gap:+.4f}, pooled SE {se:.4f}",
                )
            )
        for other, what in (
            ("ModHiFi (no comp)", "compensation"),
            ("ModHiFi (no BN recal)", "BN recalibration"),
        ):
            gap, se = _se_gap(ours, find_row(rows, other, metric).values)
            checks.append(
                Check(
                    f"{what} helps at {frac:.0%} removal",
                    gap > 0,
                    f"gap {gap:+.4f}, pooled SE {se:.4f}",
                )
            )
    for q in cfg.forget_fracs if cfg.forget_classes else ():
        fd = find_row(rows, "unlearn", f"forget_drop@q{q:g}").values
        rd = find_row(rows, "unlearn", f"retain_drop@q{q:g}").values
        rnd = find_row(rows, "unlearn", f"random_forget_drop@q{q:g}").values
        mf, mr = statistics.fmean(fd), statistics.fmean(rd)
        checks.append(
            Check(
                f"unlearning q={q:g}: forget drop >= 3x retain drop",
                mf >= 3 * max(mr, 0.0) and mf > 0,
                f"forget drop {mf:.4f}, retain drop {mr:.4f}",
            )
        )
        gap, se = _se_gap(fd, rnd)
        checks.append(
            Check(
                f"unlearning q={q:g}: forget drop beyond random zeroing by > 2 pooled SE",
                gap > 2 * se,
                f"gap {gap:+.4f}, pooled SE {se:.4f}",
            )
        )
    curves: dict[str, Curve] = {}
    if cfg.prune_fracs:
        curves["pruning"] = Curve.from_seeds(
            "Test accuracy after pruning (no fine-tuning)",
            "fraction of conv2-conv4 input channels removed",
            "test accuracy",
            list(cfg.prune_fracs),
            {
                m: [
                    list(v)
                    for v in zip(
                        *[
                            find_row(rows, m, f"test_acc@prune{f:g}").values
                            for f in cfg.prune_fracs
                        ],
                        strict=True,
                    )
                ]
                for m in PRUNE_METHODS
            },
        )
    return Result(rows=rows, checks=checks, curves=curves, extra={"timing_s": times})


EXPERIMENT = Experiment(
    name="modhifi",
    description="ModHiFi-P pruning vs L2/random and ModHiFi-U unlearning on a BN CNN, synthetic calibration",
    config_cls=ModHiFiConfig,
    run=run,
    budgets={
        "smoke": {
            "epochs": 2,
            "n_synthetic": 64,
            "n_pca": 8,
            "n_mix": 2,
            "n_mix_class": 1,
            "random_masks": 2,
            "forget_classes": (0,),
            "n_forget": 32,
            "forget_fracs": (0.05,),
            "random_draws": 2,
        },
        "quick": {},
        "full": {
            "dataset": "mnist5k",
            "widths": (32, 64, 64, 128),
            "epochs": 8,
            "n_synthetic": 1000,
        },
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
