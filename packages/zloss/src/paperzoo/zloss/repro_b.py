"""Reproduction B (``paperzoo run zloss``), the headline: 100,000 classes at equal wall-clock.

Synthetic Zipf-labelled data (:func:`paperzoo.core.data.zipf_labels`) with ``D = 100,000`` classes,
a small trainable body (``Linear(128, 128) + tanh``) and a 128-wide output layer, batch 256, plain
SGD. Each head trains for the same wall-clock budget (``seconds``; evaluation is not counted): dense
``nn.Linear`` + cross-entropy, dense ``nn.Linear`` + Z-loss, and
:class:`~paperzoo.zloss.FactoredZLossHead`. Expected: the factored step is >= 10x faster (theory
``D/4d``), hence better top-10 accuracy at equal time. The factored run is also evaluated at the
number of steps the dense cross-entropy run reached (equal steps).

At paper scale, ``data_root`` (a word-level corpus read by :mod:`paperzoo.core.datasets`:
``train.txt``/``valid.txt``/``test.txt``, PTB's or WikiText's names, or One Billion Word's text
cut into those three files) replaces the Zipf task by next-word prediction: the vocabulary is
``<unk>`` plus the ``num_classes - 1`` most frequent training words (so ``D`` is the vocabulary
size), each example is the previous ``context`` words, and the body becomes an n-gram model, a
mean of trainable word embeddings (sparse gradients) then ``Linear + tanh``. Deviation from the
official timing example (10-gram, 512-d embeddings, hidden [2048, 2048, 512]): the body keeps
this reproduction's width ``dim``, because what is compared is the output layer at equal
wall-clock.

The loop is written here from the core's parts rather than run by
:func:`paperzoo.core.training.fit`: it stops on a wall-clock budget that excludes evaluation, and
the factored head steps with :class:`~paperzoo.zloss.FactoredSGD`, not a ``torch.optim`` optimizer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_positive, check_positive_int
from paperzoo.core.data import zipf_labels
from paperzoo.core.devices import seed_everything
from paperzoo.core.experiments import Check, Curve, Row, RunContext, find_row
from paperzoo.zloss.factored import FactoredSGD, FactoredZLossHead
from paperzoo.zloss.losses import ZLoss, z_loss
from paperzoo.zloss.repro_protocol import topk_hits

__all__ = ["SPEED_METHODS", "SpeedConfig", "SpeedRun", "corpus_task", "run_speed", "speed_run"]

#: The heads B races, in the order of its rows.
SPEED_METHODS = ("dense cross-entropy", "dense z-loss", "factored z-loss")


@dataclass(frozen=True)
class SpeedConfig:
    """Reproduction B: the Zipf task, the width ``dim``, batch, time budget and SGD rates.

    ``ce_lr`` is the dense cross-entropy head's rate, ``z_lr`` both Z-loss heads'; ``z_a``, ``z_b``
    the Z-loss's ``(a, b)``; ``eval_points`` evenly spaced evaluations within ``seconds``.
    """

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
    data_root: str = ""  # a word-level corpus: next-word prediction replaces the Zipf task
    context: int = 4  # words before the target (with data_root)

    def __post_init__(self) -> None:
        check_positive_int("num_classes", self.num_classes, minimum=10)  # top-10 needs 10
        for name in ("dim", "train_size", "test_size", "batch", "eval_points", "context"):
            check_positive_int(name, getattr(self, name))
        for name in ("zipf_exponent", "seconds", "ce_lr", "z_lr", "z_a"):
            check_positive(name, getattr(self, name))
        ZLoss(a=self.z_a, b=self.z_b)  # checks (a, b) as both Z-loss heads will


@torch.no_grad()
def _topk_accuracy(
    scores: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, y: Tensor, chunk: int = 250
) -> tuple[float, float]:
    """(top-1, top-10) accuracy of ``scores(x) -> (values, classes)`` (:func:`topk_hits`)."""
    hit1, hit10 = topk_hits(scores, x, y, chunk)
    return hit1 / x.shape[0], hit10 / x.shape[0]


@dataclass
class SpeedRun:
    """One head trained for a wall-clock budget."""

    steps: int
    seconds: float
    top1: float
    top10: float
    curve: list[tuple[float, float, float]]  # (seconds, top-1, top-10)
    at_equal_steps: tuple[float, float] | None
    finite: bool


def speed_run(
    config: SpeedConfig, method: str, seed: int, data: tuple[Tensor, ...], equal_steps: int | None
) -> SpeedRun:
    """Train one head (``method`` of :data:`SPEED_METHODS`) for ``config.seconds`` of wall-clock.

    ``data`` is ``(x_train, y_train, x_test, y_test)``; evaluation is not counted in the budget.
    With ``equal_steps``, the test accuracy is also taken after that many steps.
    """
    x_tr, y_tr, x_te, y_te = data
    seed_everything(seed)
    body = nn.Sequential(nn.Linear(config.dim, config.dim), nn.Tanh())
    if config.data_root:  # an n-gram model over word ids (B, context): mean embedding first
        embed = nn.EmbeddingBag(config.num_classes, config.dim, mode="mean", sparse=True)
        body = nn.Sequential(embed, *body)
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
            loss: Tensor = factored(h, yb)
            return loss
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
    return SpeedRun(
        steps=steps,
        seconds=elapsed,
        top1=curve[-1][1],
        top10=curve[-1][2],
        curve=curve,
        at_equal_steps=at_equal,
        finite=bool(torch.isfinite(torch.stack(losses)).all()),
    )


def corpus_task(config: SpeedConfig, seed: int) -> tuple[SpeedConfig, tuple[Tensor, ...]]:
    """Next-word prediction on the corpus at ``config.data_root``.

    Returns:
        ``config`` with ``num_classes`` set to the vocabulary size ``D``, and ``(x_train, y_train,
        x_test, y_test)``: contexts ``(N, context)`` int64 word ids and the next word ``(N,)``;
        ``train_size`` windows drawn (seeded) from the train file, ``test_size`` from the test file.
    """
    from dataclasses import replace

    from paperzoo.core.datasets import TokenWindowDataset, load_real_dataset

    parts = []
    vocab = 0
    for split, size, offset in (("train", config.train_size, 0), ("test", config.test_size, 1)):
        real = load_real_dataset(
            "text-corpus", config.data_root, split=split, vocab_size=config.num_classes
        )
        assert isinstance(real.dataset, TokenWindowDataset)
        vocab = real.num_classes
        windows = real.dataset.ids.long().unfold(0, config.context + 1, 1)  # (T - c, c + 1)
        g = torch.Generator().manual_seed(seed * 2 + offset)
        pick = torch.randperm(windows.shape[0], generator=g)[:size]
        parts += [windows[pick, :-1].contiguous(), windows[pick, -1].contiguous()]
    if vocab < 10:
        raise ValueError(f"data_root: expected a vocabulary of >= 10 words, got {vocab}")
    return replace(config, num_classes=vocab), tuple(parts)


def run_speed(
    config: SpeedConfig, ctx: RunContext
) -> tuple[list[Row], list[Check], dict[str, Curve], dict[str, object]]:
    """Reproduction B on ``ctx.seeds``: rows ``B <head>``, three checks, two curves (per-seed band)."""
    per: dict[str, list[SpeedRun]] = {m: [] for m in SPEED_METHODS}
    prior: list[tuple[float, float]] = []
    task = config
    for seed in ctx.seeds:
        if config.data_root:
            task, data = corpus_task(config, seed)
        else:
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
        frequent = torch.bincount(data[1], minlength=task.num_classes).topk(10).indices
        prior.append(
            (
                float((data[3] == frequent[0]).float().mean()),
                float((data[3][:, None] == frequent[None, :]).any(1).float().mean()),
            )
        )
        ce_steps: int | None = None
        for method in SPEED_METHODS:
            res = speed_run(
                task, method, seed, data, ce_steps if method == "factored z-loss" else None
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
    curves = {
        f"speed_{name}": Curve.from_seeds(
            f"B: test {name} vs training time (D={task.num_classes}, {n} seeds)",
            "training seconds",
            name,
            xs,
            {m: [[point[col] for point in r.curve] for r in per[m]] for m in SPEED_METHODS},
        )
        for name, col in (("top1", 1), ("top10", 2))
    }
    return rows, checks, curves, {"speedup_steps_factored_over_dense_z": speedup}
