"""Reproduction A2 (``paperzoo run zloss``): the spherical losses at many classes, factored head.

The spherical losses where they are meant to be used: the same Zipf-labelled data as B
(:func:`paperzoo.core.data.zipf_labels`, ``num_classes`` classes, 10,000 by default, with a
train/validation/test split per seed), a body ``Linear(d, d) + tanh`` and a
:class:`~paperzoo.zloss.FactoredSphericalLinear` head trained exactly in factored form, for the same
number of plain-SGD steps (``steps``, body and head at one rate) with every spherical loss that has a
``_from_stats`` form (:data:`~paperzoo.zloss.SPHERICAL_LOSSES`: Z-loss, squared error, log-Taylor-
and log-spherical-softmax). Selection as in A, on validation only
(:func:`~paperzoo.zloss.repro_protocol.select_loss`): the loss's own grid at the base rate ``lr``
(Z-loss ``a_grid × b_grid``, log-spherical ``eps_grid``), then the rate from ``lr_grid`` (five
decades in steps of 10, because plain SGD's usable rate differs by orders of magnitude between these
losses: the squared error's gradient grows with ``D``). Test top-1 and top-10 of the selected runs,
ranked by each loss's own class probability as in A. A run whose loss turns non-finite stops and
scores 0 (listed in ``extra``).

The training loop is written here from the core's parts (seeding, the data) rather than run by
:func:`paperzoo.core.training.fit`: the head's update is :class:`~paperzoo.zloss.FactoredSGD`'s
exact factored step, not a ``torch.optim`` step, and a diverged run must stop at its first
non-finite loss.

Deviation: the paper compares the spherical losses on language models with a recurrent/feed-forward
body and its own tuning; this is a synthetic stand-in at the same kind of output size, with our
grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_positive, check_positive_int
from paperzoo.core.data import zipf_labels
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Row, RunContext, find_row
from paperzoo.zloss.factored import FactoredSGD, FactoredSphericalLinear
from paperzoo.zloss.losses import SPHERICAL_LOSSES
from paperzoo.zloss.repro_protocol import (
    ModelCache,
    check_grid,
    class_scores,
    paired_differences,
    run_label,
    select_loss,
    topk_hits,
)

__all__ = [
    "MANY_LOSSES",
    "ManyClassConfig",
    "ManyClassRuns",
    "many_class_hits",
    "many_loss_grid",
    "run_many",
]

#: Every spherical loss with a ``_from_stats`` form, in the order of A2's rows.
MANY_LOSSES = tuple(SPHERICAL_LOSSES)


@dataclass(frozen=True)
class ManyClassConfig:
    """Reproduction A2: the Zipf task, the body width ``dim``, the SGD budget and the grids.

    ``lr`` (plain SGD, body and head) is the base of ``lr_grid``, where the loss grids are searched.
    ``b_grid``'s default reaches 20 because ``z_c <= √(D - 1) = 100`` at ``D = 10⁴``.
    """

    num_classes: int = 10_000
    dim: int = 128
    zipf_exponent: float = 1.1
    train_size: int = 50_000
    val_size: int = 2000
    test_size: int = 2000
    steps: int = 200
    batch: int = 256
    lr: float = 1.0
    lr_grid: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
    a_grid: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    b_grid: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)
    eps_grid: tuple[float, ...] = (1e-3, 1e-2, 0.1)

    def __post_init__(self) -> None:
        check_positive_int("num_classes", self.num_classes, minimum=10)  # top-10 needs 10
        check_positive_int("dim", self.dim)
        check_positive("zipf_exponent", self.zipf_exponent)
        for name in ("train_size", "val_size", "test_size", "steps", "batch"):
            check_positive_int(name, getattr(self, name))
        check_positive("lr", self.lr)
        check_grid("lr_grid", self.lr_grid)
        check_grid("a_grid", self.a_grid)
        check_grid("b_grid", self.b_grid, positive=False)
        check_grid("eps_grid", self.eps_grid)


def many_loss_grid(config: ManyClassConfig, name: str) -> list[dict[str, float]]:
    """A2's own hyper-parameters of a loss (one empty dict for a loss without any)."""
    if name == "z-loss":
        return [{"a": a, "b": b} for a in config.a_grid for b in config.b_grid]
    if name == "log-spherical-softmax":
        return [{"eps": e} for e in config.eps_grid]
    if name in SPHERICAL_LOSSES:
        return [{}]
    raise ValueError(f"name: expected one of {list(SPHERICAL_LOSSES)}, got {name!r}")


@torch.no_grad()
def many_class_hits(
    body: nn.Module,
    layer: FactoredSphericalLinear,
    name: str,
    x: Tensor,
    y: Tensor,
    k: int = 10,
    chunk: int = 500,
) -> tuple[int, int]:
    """Top-1 and top-``k`` hit counts of the loss's own class scores (:func:`topk_hits`).

    ``x (N, d_in)``, ``y (N,)``; the outputs ``(chunk, D)`` are formed chunk by chunk (evaluation
    only, never in training) so that the log-Taylor- and log-spherical-softmax rank by their own
    ``p`` (:func:`class_scores`). A diverged run is scored 0 by its caller.
    """

    def top(xb: Tensor) -> tuple[Tensor, Tensor]:
        values, classes = class_scores(name, layer.logits(body(xb))).topk(k, dim=1)
        return values, classes

    return topk_hits(top, x, y, chunk)


class ManyClassRuns(ModelCache[tuple[nn.Module, FactoredSphericalLinear]]):
    """A body ``Linear(d, d) + tanh`` and a :class:`FactoredSphericalLinear` head on Zipf labels.

    Trains one (loss, loss hyper-parameters, lr) for ``steps`` plain-SGD steps (body and head at
    the same rate) on each seed; every run on a seed starts from the same initialisation and sees
    the same batches (paired). A run whose loss turns non-finite stops and scores 0.
    """

    def __init__(self, config: ManyClassConfig, ctx: RunContext) -> None:
        super().__init__()
        self.config = config
        self.ctx = ctx
        self._data: dict[int, tuple[Tensor, ...]] = {}
        self._val: dict[tuple[str, str, int], float] = {}
        self._finite: dict[tuple[str, str, int], bool] = {}
        self.diverged: list[str] = []

    def data(self, seed: int) -> tuple[Tensor, ...]:
        """``(x_train, y_train, x_val, y_val, x_test, y_test)`` of one seed's task."""
        if seed not in self._data:
            c = self.config
            n_tr, n_val = c.train_size, c.val_size
            x, y = zipf_labels(
                n_tr + n_val + c.test_size,
                c.num_classes,
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
        """Train for ``steps``; returns ``(body, head, finite)``."""
        c = self.config
        x_tr, y_tr = self.data(seed)[:2]
        seed_everything(seed)
        body = nn.Sequential(nn.Linear(c.dim, c.dim), nn.Tanh())
        layer = FactoredSphericalLinear(c.dim, c.num_classes, validate=False)
        body_opt = torch.optim.SGD(body.parameters(), lr=lr)
        head_opt = FactoredSGD(layer, lr=lr)
        loss_fn: Callable[..., Tensor] = SPHERICAL_LOSSES[name]
        g = torch.Generator().manual_seed(seed)
        order, pos = torch.randperm(x_tr.shape[0], generator=g), 0
        for _ in range(c.steps):
            if pos + c.batch > order.numel():
                order, pos = torch.randperm(x_tr.shape[0], generator=g), 0
            idx = order[pos : pos + c.batch]
            pos += c.batch
            stats = layer(body(x_tr[idx]), y_tr[idx])
            loss = loss_fn(*stats, c.num_classes, validate=False, **params)
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
            key = (name, run_label(params, lr), seed)
            if key not in self._val:
                body, layer, finite = self.train(name, params, lr, seed)
                x_val, y_val = self.data(seed)[2:4]
                hit1, _ = many_class_hits(body, layer, name, x_val, y_val)
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
            key = (name, run_label(params, lr), seed)
            body, layer = self._models[key]
            x_te, y_te = self.data(seed)[4:]
            hit1, hit10 = many_class_hits(body, layer, name, x_te, y_te)
            if not self._finite[key]:
                hit1 = hit10 = 0
            out.append((hit1 / y_te.numel(), hit10 / y_te.numel()))
        return out


def run_many(
    config: ManyClassConfig, ctx: RunContext
) -> tuple[list[Row], list[Check], dict[str, object]]:
    """Reproduction A2 on ``ctx.seeds``: rows ``A2 <loss>`` (test top-1/top-10, val top-1), two
    checks, extras (the selection, paired differences, diverged runs)."""
    runs = ManyClassRuns(config, ctx)
    seeds = list(ctx.seeds)
    selected = {
        name: select_loss(
            runs,
            name,
            seeds,
            grid=many_loss_grid(config, name),
            base_lr=config.lr,
            lr_grid=config.lr_grid,
            log=ctx.log,
            tag="A2",
        )
        for name in MANY_LOSSES
    }
    rows: list[Row] = []
    top1: dict[str, list[float]] = {}
    top10: dict[str, list[float]] = {}
    for name, sel in selected.items():
        res = runs.test(name, sel.params, sel.lr, seeds)
        top1[name], top10[name] = [r[0] for r in res], [r[1] for r in res]
        ctx.log.info("A2: %s (%s) test top-1/top-10 %s", name, run_label(sel.params, sel.lr), res)
        rows.append(Row.from_values(f"A2 {name}", "test_top1", top1[name]))
        rows.append(Row.from_values(f"A2 {name}", "test_top10", top10[name]))
        rows.append(Row.from_values(f"A2 {name}", "val_top1", sel.val))
    others = [n for n in MANY_LOSSES if n != "z-loss"]
    extra: dict[str, object] = {
        "many_classes_selection": {name: sel.record for name, sel in selected.items()},
        "many_classes_paired_test_top1_z_minus": {
            n: paired_differences(top1["z-loss"], top1[n]) for n in others
        },
        "many_classes_paired_test_top10_z_minus": {
            n: paired_differences(top10["z-loss"], top10[n]) for n in others
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
                f"{config.num_classes} (test {label}, factored head, equal steps)",
                all(o.mean <= z.mean for o in rest),
                "; ".join(f"{o.method[3:]} {o.mean:.4f} ± {o.std:.4f}" for o in rest)
                + f"; z-loss {z.mean:.4f} ± {z.std:.4f}",
            )
        )
    return rows, checks, extra
