"""Linear probes on frozen features: error against training-set size for NB and LR heads.

The reference protocol (``main_train_offline.py``, ``main_simulation.py``): for each training size
``m``, draw a random subset of the pool (redrawn until every class appears), fit a MinMax scaler
on the subset and apply it to the test set, fit naive Bayes and logistic regression, record the test
error; repeat. :func:`samples_to_reach` reads off the smallest ``m`` whose mean error is within
``tol`` of the asymptotic error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
)
from paperzoo.core.evaluation import accuracy
from paperzoo.dis_vs_gen.logistic import LogisticHead
from paperzoo.dis_vs_gen.naive_bayes import GaussianNBHead

__all__ = ["HEADS", "ProbeCurve", "minmax_scale", "probe_curve", "samples_to_reach"]

HEADS = ("nb", "lr")
"""The probe heads: ``"nb"`` (:class:`GaussianNBHead`), ``"lr"`` (:class:`LogisticHead`)."""

_MAX_REDRAWS = 1000


@dataclass(frozen=True)
class ProbeCurve:
    """Test error per head: ``errors[head]`` is ``(repeats, len(m))`` float64 for the sizes ``m``."""

    m: list[int]
    errors: dict[str, Tensor]

    def mean(self, head: str) -> list[float]:
        """Mean error over repeats, one per ``m``."""
        return [float(v) for v in self.errors[head].mean(0)]

    def std(self, head: str) -> list[float]:
        """Population standard deviation over repeats, one per ``m``."""
        return [float(v) for v in self.errors[head].std(0, correction=0)]


def minmax_scale(x_fit: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Scale every column to ``[0, 1]`` by ``x_fit``'s min and max (scikit-learn's MinMaxScaler).

    A constant column keeps range 1 (it maps to 0), as scikit-learn does. Returns the scaled
    ``x_fit`` and each of ``others`` ``(*, n)`` (test data may fall outside ``[0, 1]``).
    """
    lo = x_fit.amin(0)
    rng = x_fit.amax(0) - lo
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    return tuple((t - lo) / rng for t in (x_fit, *others))


def _subset(y: Tensor, m: int, k: int, per_class: bool, g: torch.Generator) -> Tensor:
    """Row indices of one training subset (see :func:`probe_curve`)."""
    n = y.shape[0]
    if per_class:
        perm = torch.randperm(n, generator=g)
        yp = y[perm]
        order = torch.argsort(yp, stable=True)
        idx, ys = perm[order], yp[order]
        counts = torch.bincount(ys, minlength=k)
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n) - start[ys]
        return idx[rank < m]
    for _ in range(_MAX_REDRAWS):
        idx = torch.randperm(n, generator=g)[:m]
        if int(torch.unique(y[idx]).numel()) == k:
            return idx
    raise ValueError(f"m_grid: no subset of {m} rows out of {_MAX_REDRAWS} draws held every class")


def probe_curve(
    x_tr: Tensor,
    y_tr: Tensor,
    x_te: Tensor,
    y_te: Tensor,
    m_grid: Sequence[int],
    heads: Sequence[str] = HEADS,
    repeats: int = 5,
    scaler: Literal["minmax"] | None = "minmax",
    seed: int = 0,
    *,
    per_class: bool = False,
    n_classes: int | None = None,
    C: float = 1.0,
    var_smoothing: float = 1e-9,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> ProbeCurve:
    """Test error of NB and LR heads against the training-set size, over repeated random subsets.

    Args:
        x_tr: the training pool ``(N, n)``; y_tr: its labels ``(N,)``.
        x_te: test features ``(T, n)``; y_te: ``(T,)``.
        m_grid: training sizes; the total number of rows (a subset redrawn until every class
            appears, the reference protocol), or rows per class with ``per_class=True``.
        heads: any of ``"nb"``, ``"lr"``.
        repeats: subsets per size (reference: 5).
        scaler: ``"minmax"`` (fit on each subset, applied to the test set; reference) or None.
        seed: seeds the subsets (repeat ``r`` of size ``m`` is the same for every head).
        per_class: read ``m_grid`` as rows per class (balanced few-shot subsets).
        n_classes: ``K`` (default: ``max(y_tr) + 1``).
        C: the LR head's inverse regularisation (see :class:`LogisticHead` on ``K = 2``).
        var_smoothing: the NB head's absolute epsilon.
        max_iter, tol: the LR solver's.

    Returns:
        :class:`ProbeCurve` with errors ``(repeats, len(m_grid))`` per head.

    Raises:
        ValueError: an ``m`` larger than the pool (or than a class's rows with ``per_class``), an
            ``m`` below 2 (or below ``K`` without ``per_class``), unknown heads, bad shapes.
    """
    check_float_tensor("x_tr", x_tr, ndim=2, nonempty=True)
    check_float_tensor("x_te", x_te, ndim=2, nonempty=True)
    check_finite("x_tr", x_tr)
    check_finite("x_te", x_te)
    if x_te.shape[1] != x_tr.shape[1]:
        raise ValueError(
            f"x_te: expected {x_tr.shape[1]} features like x_tr, got shape {tuple(x_te.shape)}"
        )
    k = int(y_tr.max()) + 1 if n_classes is None else n_classes
    k = check_positive_int("n_classes", k, minimum=2)
    check_labels("y_tr", y_tr, n=x_tr.shape[0], num_classes=k, like=x_tr)
    check_labels("y_te", y_te, n=x_te.shape[0], num_classes=k, like=x_te)
    reps = check_positive_int("repeats", repeats)
    c = check_positive("C", C)
    heads = [check_choice("heads", h, HEADS) for h in heads]
    if not heads:
        raise ValueError("heads: expected at least one of ('nb', 'lr'), got none")
    if scaler is not None:
        check_choice("scaler", scaler, ("minmax",))
    counts = torch.bincount(y_tr, minlength=k)
    limit = int(counts.min()) if per_class else x_tr.shape[0]
    grid = [check_positive_int("m_grid", m) for m in m_grid]
    for m in grid:
        low = 1 if per_class else max(2, k)
        if not low <= m <= limit:
            what = "rows of the smallest class" if per_class else "rows in the pool"
            raise ValueError(f"m_grid: expected sizes in [{low}, {limit}] ({what}), got {m}")
    if not grid:
        raise ValueError("m_grid: expected at least one size, got none")
    n = x_tr.shape[1]
    errors = {h: torch.zeros(reps, len(grid), dtype=torch.float64) for h in heads}
    g = torch.Generator().manual_seed(int(seed))
    for j, m in enumerate(grid):
        for r in range(reps):
            idx = _subset(y_tr.cpu(), m, k, per_class, g).to(x_tr.device)
            xs, ys = x_tr[idx], y_tr[idx]
            xt = x_te
            if scaler == "minmax":
                xs, xt = minmax_scale(xs, x_te)
            for h in heads:
                head: GaussianNBHead | LogisticHead
                if h == "nb":
                    head = GaussianNBHead(n, k, var_smoothing)
                else:
                    head = LogisticHead(n, k, c, max_iter, tol, dtype=torch.float64)
                head = head.to(x_tr.device).fit(xs.double(), ys, validate=False)
                acc = accuracy(head, xt.double(), y_te, device=x_tr.device)
                errors[h][r, j] = 1.0 - acc
    return ProbeCurve(grid, errors)


def samples_to_reach(
    curve: ProbeCurve,
    tol: float = 0.01,
    reference: Literal["asymptotic"] | float = "asymptotic",
    *,
    interpolate: bool = False,
) -> dict[str, float]:
    """The smallest ``m`` whose mean error is within ``tol`` of the reference error, per head.

    Args:
        curve: a :class:`ProbeCurve`.
        tol: the allowed excess error (reference: 0.01).
        reference: ``"asymptotic"`` (the head's own mean error at the largest ``m``) or a number
            (e.g. the Bayes error).
        interpolate: interpolate linearly in ``log m`` between the last size above the target and
            the first one at or below it (a smooth ``m_eps`` for log-log slopes).

    Returns:
        ``{head: m_eps}``; ``inf`` when no size reaches the target.
    """
    t = check_positive("tol", tol, allow_zero=True)
    out: dict[str, float] = {}
    for h in curve.errors:
        mean = curve.mean(h)
        ref = mean[-1] if reference == "asymptotic" else float(reference)
        target = ref + t
        hit = next((j for j, e in enumerate(mean) if e <= target), None)
        if hit is None:
            out[h] = math.inf
        elif not interpolate or hit == 0:
            out[h] = float(curve.m[hit])
        else:
            e0, e1 = mean[hit - 1], mean[hit]
            frac = (e0 - target) / (e0 - e1) if e0 > e1 else 1.0
            lm = math.log(curve.m[hit - 1]) + frac * (
                math.log(curve.m[hit]) - math.log(curve.m[hit - 1])
            )
            out[h] = math.exp(lm)
    return out
