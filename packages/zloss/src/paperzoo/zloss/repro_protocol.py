"""The comparison protocol that reproductions A and A2 share (``paperzoo run zloss``).

Every loss is compared the same way: it predicts (and ranks its top-k) by its own class scores
(:func:`class_scores`), it is selected on validation data only in two stages (:func:`select_loss`:
its own hyper-parameters at the base learning rate, then the learning rate), and the test split is
read for the selected runs alone; per-seed differences against the Z-loss are paired
(:func:`paired_differences`), because every run on a seed starts from the same initialisation and
sees the same batches.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import torch
from torch import Tensor, nn

from paperzoo.core.checks import as_real, check_positive
from paperzoo.core.selection import label, select_on_validation

__all__ = [
    "LossRuns",
    "ModelCache",
    "Predictor",
    "Selected",
    "check_grid",
    "class_scores",
    "paired_differences",
    "run_label",
    "select_loss",
    "topk_hits",
]


def class_scores(name: str, o: Tensor) -> Tensor:
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


class Predictor(nn.Module):
    """``model`` followed by the loss's own class scores ``(B, D)`` (:func:`class_scores`)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return class_scores(self.name, self.model(x))


@torch.no_grad()
def topk_hits(
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


def check_grid(name: str, values: tuple[float, ...], *, positive: bool = True) -> None:
    """A selection grid: one or more distinct finite numbers (each > 0 when ``positive``).

    Raises:
        TypeError: a value that is not a real number.
        ValueError: an empty grid, a repeated value, or a value out of range.
    """
    if len(values) == 0:
        raise ValueError(f"{name}: expected at least one grid value, got an empty sequence")
    for v in values:
        if positive:
            check_positive(name, v)
        elif not math.isfinite(as_real(name, v)):
            raise ValueError(f"{name}: expected finite grid values, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: expected distinct grid values, got {values!r}")


def run_label(params: dict[str, float], lr: float) -> str:
    """The key of one run: ``"a=1,b=0,lr=0.001"`` (``"lr=0.001"`` for a loss without a grid)."""
    return label({**params, "lr": lr})


M = TypeVar("M")


class ModelCache(Generic[M]):
    """Trained models ``M`` keyed by ``(loss, run label, seed)``; frees all but the selected run."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, int], M] = {}

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None:
        """Free the models of ``name`` other than the selected configuration's."""
        keep = run_label(params, lr)
        for key in [k for k in self._models if k[0] == name and k[1] != keep]:
            del self._models[key]


class LossRuns(Protocol):
    """What :func:`select_loss` needs: validation scores per seed, and freeing unselected runs."""

    def val(
        self, name: str, params: dict[str, float], lr: float, seeds: list[int]
    ) -> list[float]: ...

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None: ...


@dataclass
class Selected:
    """The configuration a loss gets after selection on validation, and how it was chosen."""

    params: dict[str, float]
    lr: float
    val: list[float]
    record: dict[str, object]


def select_loss(
    runs: LossRuns,
    name: str,
    seeds: list[int],
    *,
    grid: Sequence[dict[str, float]],
    base_lr: float,
    lr_grid: Sequence[float],
    log: logging.Logger,
    tag: str,
) -> Selected:
    """Pick a loss's hyper-parameters by the mean validation top-1 over every seed's split.

    Stage 1 (only for a loss with its own hyper-parameters, ``len(grid) > 1``): its ``grid`` at
    ``base_lr``. Stage 2 (every loss alike): ``base_lr`` first, then the rest of ``lr_grid``, with the
    stage-1 winner. Both stages train for the final budget and never look at the test split; ties go
    to the earlier candidate (:func:`paperzoo.core.selection.argmax_first`, tolerance 1e-9).
    """

    def mean_val(params: dict[str, float], lr: float) -> float:
        score = statistics.fmean(runs.val(name, params, lr, seeds))
        log.info("%s select %s %s: val top-1 %.4f", tag, name, run_label(params, lr), score)
        return score

    params = dict(grid[0])
    stage1: dict[str, float] = {}
    if len(grid) > 1:
        by_params = select_on_validation(grid, lambda p: mean_val(p, base_lr))
        params, stage1 = dict(by_params.best), by_params.scores
    lrs = [base_lr, *(lr for lr in lr_grid if lr != base_lr)]
    by_lr = select_on_validation(lrs, lambda lr: mean_val(params, lr), key=lambda lr: f"{lr:g}")
    lr_best = by_lr.best
    val = runs.val(name, params, lr_best, seeds)
    record: dict[str, object] = {
        "selected": {**params, "lr": lr_best},
        "val_top1_per_seed": val,
        "lr_grid_mean_val_top1": by_lr.scores,
    }
    if stage1:
        record["loss_grid_mean_val_top1_at_base_lr"] = stage1
    runs.keep_only(name, params, lr_best)
    return Selected(params, lr_best, val, record)


def paired_differences(z: list[float], other: list[float]) -> dict[str, object]:
    """Per-seed ``z - other`` with its mean, population std and the seeds where ``z`` is ahead/tied."""
    diff = [a - b for a, b in zip(z, other, strict=True)]
    return {
        "per_seed": diff,
        "mean": statistics.fmean(diff),
        "std": statistics.pstdev(diff) if len(diff) > 1 else 0.0,
        "z_better_on": sum(d > 0 for d in diff),
        "tied_on": sum(d == 0 for d in diff),
    }
