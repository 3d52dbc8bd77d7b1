"""Small reproduction (spec section 6), registered as ``paperzoo run metrix``.

Zero-shot retrieval on sklearn digits (the DML protocol scaled down from CUB-200 / Cars-196 / SOP
with a ResNet-50): an MLP 64-256-128-64 (embeddings L2-normalised inside the losses) is trained on
classes 0-4 with m-per-class batches (5 classes x 8, ``paperzoo.core.samplers.MPerClassSampler``)
and evaluated on the unseen classes 5-9 by Recall@1, MAP@R and the utilization of the test set
w.r.t. the training set. The same MLP untrained is reported as a reference point. Methods: contrastive (official margins 0 / 0.5, avg-non-zero pairs) and
Multi-Similarity (no mining) as base losses; Metrix at embedding level for both, at feature level
(mixing the 256-d hidden layer) and input level (mixing the 64 pixels) for contrastive. w = 0.4,
alpha = 2, the official coin between pos-neg and anchor-neg mixing, ``anc_neg_anchors="all"``.
Scaled down: data (1797 8x8 digits instead of 200-class photo sets), model (an MLP instead of an
ImageNet-pretrained ResNet-50), schedule (Adam 1e-3 for a few hundred iterations, no warm-up,
no step decay, no gradient clipping).

At paper scale, ``--set data_root=DIR`` trains and retrieves on ``real_dataset`` (``cub200`` by
default, ``cars196`` or ``sop``) read by ``paperzoo.core.datasets`` with the class split (first
half of the classes to train, the unseen second half to retrieve among), images resized and
center-cropped to ``image_size`` and flattened for the same MLP (no pretrained ResNet-50 can be
downloaded here), and the input-level Metrix mixes those pixels.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive, check_positive_int
from paperzoo.core.data import load_dataset
from paperzoo.core.datasets import load_retrieval_set
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.models import mlp
from paperzoo.core.samplers import MPerClassSampler
from paperzoo.core.training import StepFn, fit
from paperzoo.metric_losses import map_at_r, recall_at_k

from .generic import contrastive_generic, multi_similarity_generic
from .metrix import MetrixLoss
from .utilization import utilization

__all__ = ["EXPERIMENT", "METHODS", "MetrixConfig", "run"]

#: (method, base loss, Metrix level or None)
METHODS: tuple[tuple[str, str, str | None], ...] = (
    ("untrained MLP (reference)", "none", None),
    ("contrastive", "contrastive", None),
    ("contrastive + metrix/embed", "contrastive", "embed"),
    ("contrastive + metrix/feature", "contrastive", "feature"),
    ("contrastive + metrix/input", "contrastive", "input"),
    ("ms", "ms", None),
    ("ms + metrix/embed", "ms", "embed"),
)
METRIC_R1 = "zero-shot digits 5-9 recall@1"


@dataclass(frozen=True)
class MetrixConfig:
    """Config of the ``metrix`` experiment (defaults = the spec's section 6 sizes)."""

    iterations: int = 800
    m: int = 8
    batch: int = 40
    lr: float = 1e-3
    weight: float = 0.4
    alpha: float = 2.0
    #: feature level mixes each anchor's first positive only (the official embed/feature pairing):
    #: 1,280 instead of 8,960 head passes per step keeps the quick budget under 5 minutes
    feature_first_positive_only: bool = True
    threads: int | None = 1
    data_root: str = ""  # a folder with the paper's data set: real_dataset replaces digits
    real_dataset: str = "cub200"  # cub200, cars196 or sop
    image_size: int = 32  # the crop of the real images (flattened into the MLP)

    def __post_init__(self) -> None:
        if self.threads is not None:
            check_positive_int("threads", self.threads)
        check_choice("real_dataset", self.real_dataset, ("cub200", "cars196", "sop"))
        check_positive_int("image_size", self.image_size)
        for name in ("iterations", "m", "batch"):
            check_positive_int(name, getattr(self, name))
        check_positive("lr", self.lr)
        check_positive("weight", self.weight, allow_zero=True)
        check_positive("alpha", self.alpha)
        if self.batch % self.m:
            raise ValueError(f"batch: expected a multiple of m={self.m}, got {self.batch}")
        if self.batch // self.m > 5:
            raise ValueError(
                f"batch: expected at most 5 classes (m * 5 = {self.m * 5}), got {self.batch}"
            )


def _step(
    base: str, level: str | None, cfg: MetrixConfig, x: Tensor, y: Tensor, seed: int
) -> StepFn:
    """``fit``'s step for one method (a batch is a list of indices)."""
    form = contrastive_generic() if base == "contrastive" else multi_similarity_generic()
    gen = torch.Generator().manual_seed(1000 + seed)
    metrix = MetrixLoss(
        form,
        weight=cfg.weight,
        alpha=cfg.alpha,
        generator=gen,
        first_positive_only=level == "feature" and cfg.feature_first_positive_only,
        validate=False,
    )

    def step(model: nn.Module, idx: Sequence[int], device: torch.device) -> dict[str, Tensor]:
        ids = torch.as_tensor(idx, device=device)
        xb, yb = x[ids], y[ids]
        if level is None:
            return {"loss": form.batch_loss(model(xb), yb)}
        if level == "embed":
            out: dict[str, Tensor] = metrix(model(xb), yb)
            return out
        if level == "input":
            return metrix.step_input(model, xb, yb)
        assert isinstance(model, nn.Sequential)  # mlp: Linear, ReLU | Linear, ReLU, Linear
        seq = model
        return metrix.step_feature(seq[:2], seq[2:], xb, yb)

    return step


def _train(
    base: str,
    level: str | None,
    x: Tensor,
    y: Tensor,
    cfg: MetrixConfig,
    seed: int,
    device: torch.device,
) -> nn.Module:
    seed_everything(seed)
    model = mlp([x.shape[1], 256, 128, 64]).to(device)
    if base == "none":
        return model
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sampler = MPerClassSampler(y, cfg.m, cfg.batch, length=cfg.iterations * cfg.batch, seed=seed)
    step = _step(base, level, cfg, x.to(device), y.to(device), seed)
    fit(model, sampler, opt, step_fn=step, device=device, progress=False)
    return model


def run(config: MetrixConfig, ctx: RunContext) -> Result:
    """Every method for every seed; rows per method and metric, checks from the paired gains."""
    if config.data_root:  # the class split: train and test classes are disjoint by construction
        x, y, k = load_retrieval_set(
            config.real_dataset, config.data_root, image_size=config.image_size
        )
        train, test = y < k, y >= k
    else:
        split = load_dataset("digits", seed=0)
        x = torch.cat([split.x_train, split.x_val, split.x_test])
        y = torch.cat([split.y_train, split.y_val, split.y_test])
        train, test = y < 5, y >= 5
    vals: dict[str, dict[str, list[float]]] = {
        m: {"recall@1": [], "map@r": [], "utilization": [], "seconds": []} for m, _, _ in METHODS
    }
    for seed in ctx.seeds:
        for method, base, level in METHODS:
            t0 = time.perf_counter()
            model = _train(base, level, x[train], y[train], config, seed, ctx.device)
            secs = time.perf_counter() - t0
            model.eval()
            with torch.no_grad():
                e_te = model(x[test].to(ctx.device)).cpu()
                e_tr = model(x[train].to(ctx.device)).cpu()
            v = vals[method]
            v["recall@1"].append(recall_at_k(e_te, y[test], ks=(1,))[1])
            v["map@r"].append(map_at_r(e_te, y[test]))
            v["utilization"].append(float(utilization(e_te, e_tr)))
            v["seconds"].append(secs)
            ctx.log.info(
                "seed %d %s: R@1 %.4f MAP@R %.4f util %.4f (%.1fs)",
                seed,
                method,
                v["recall@1"][-1],
                v["map@r"][-1],
                v["utilization"][-1],
                secs,
            )
    where = (
        f"zero-shot {config.real_dataset} unseen classes"
        if config.data_root
        else "zero-shot digits 5-9"
    )
    rows = [
        Row.from_values(method, f"{where} {metric}", v)
        for method, _, _ in METHODS
        for metric, v in vals[method].items()
    ]
    checks: list[Check] = []
    gains: list[float] = []
    for method, base, level in METHODS:
        if level is None:
            continue
        b = find_row(rows, base, f"{where} recall@1")
        r = find_row(rows, method, f"{where} recall@1")
        paired = [a - c for a, c in zip(r.values, b.values, strict=True)]
        gains.append(statistics.fmean(paired))
        checks.append(
            Check(
                f"{method} R@1 not worse than {base} by more than one seed-std",
                r.mean >= b.mean - b.std,
                f"{r.mean:.4f} ± {r.std:.4f} vs {b.mean:.4f} ± {b.std:.4f} (paired gain "
                f"{gains[-1]:+.4f})",
            )
        )
    mean_gain = statistics.fmean(gains)
    checks.append(
        Check(
            "mean paired R@1 gain of the Metrix variants over their own base losses > 0",
            mean_gain > 0,
            f"{mean_gain:+.4f} over {len(gains)} variants",
        )
    )
    embed = find_row(rows, "contrastive + metrix/embed", f"{where} seconds")
    for slower in ("contrastive + metrix/feature", "contrastive + metrix/input"):
        other = find_row(rows, slower, f"{where} seconds")
        checks.append(
            Check(
                f"embed level cheaper than {slower.split('/')[-1]} level (training seconds)",
                embed.mean < other.mean,
                f"{embed.mean:.1f}s vs {other.mean:.1f}s",
            )
        )
    return Result(
        rows=rows,
        checks=checks,
        extra={"paired_r1_gains": dict(zip([m for m, _, lv in METHODS if lv], gains, strict=True))},
    )


EXPERIMENT = Experiment(
    name="metrix",
    description=(
        "Metrix (mixup for DML) on zero-shot digits retrieval: contrastive and MS with mixing at "
        "embedding, feature and input level; Recall@1, MAP@R, utilization"
    ),
    config_cls=MetrixConfig,
    run=run,
    budgets={
        "smoke": {"iterations": 20},
        "quick": {"iterations": 400},
        "full": {"iterations": 1500},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
