"""Hyper-parameter selection on validation data only: a grid and an argmax with stable ties.

A reproduction that races several methods gives each the same selection: every candidate is scored
on the validation split (never the test split), the best score wins, and ties go to the earlier
candidate so that the order of the grid, not floating-point noise, breaks them::

    from paperzoo.core.selection import grid, select_on_validation

    sel = select_on_validation(grid(lr=(1e-3, 1e-2), wd=(0.0, 1e-4)), lambda p: val_top1(**p))
    sel.best, sel.best_score, sel.scores  # {"lr=0.001,wd=0": 0.91, ...}
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Selection", "argmax_first", "grid", "label", "select_on_validation"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """The Cartesian product of the named axes, the last axis varying fastest.

    ``grid(a=(1, 2), b=(0,))`` is ``[{"a": 1, "b": 0}, {"a": 2, "b": 0}]``; no axes give ``[{}]``.

    Raises:
        ValueError: an empty axis (it would select nothing).
    """
    for name, values in axes.items():
        if len(values) == 0:
            raise ValueError(f"{name}: expected at least one grid value, got an empty sequence")
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def label(params: Mapping[str, Any]) -> str:
    """A stable text key for one grid point: ``"a=1,b=0.5"`` (``"default"`` for no parameters)."""
    if not params:
        return "default"
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def argmax_first(scores: Mapping[K, float], *, tol: float = 1e-9) -> K:
    """The key of the highest score; a later key wins only when it is more than ``tol`` higher.

    NaN scores never win (a diverged run is never selected unless every run diverged, when the
    first key is returned).

    Raises:
        ValueError: no scores.
    """
    if not scores:
        raise ValueError("scores: expected at least one candidate, got none")
    keys = list(scores)
    best = keys[0]
    for k in keys[1:]:
        v, b = scores[k], scores[best]
        if not math.isnan(v) and (math.isnan(b) or v > b + tol):
            best = k
    return best


@dataclass(frozen=True)
class Selection(Generic[T]):
    """The winner of a selection and every candidate's validation score (keyed by its label)."""

    best: T
    best_score: float
    scores: dict[str, float] = field(default_factory=dict)


def select_on_validation(
    candidates: Iterable[T],
    score: Callable[[T], float],
    *,
    key: Callable[[T], str] | None = None,
    maximize: bool = True,
    tol: float = 1e-9,
    log: logging.Logger | None = None,
) -> Selection[T]:
    """Score every candidate with ``score`` (a validation metric) and return the best.

    Args:
        candidates: grid points (dicts from :func:`grid`, or anything ``key`` can name).
        score: validation score of one candidate; it must not read the test split.
        key: the candidate's label in ``scores`` (default: :func:`label` for mappings, ``str``
            otherwise); labels must be unique.
        maximize: higher is better (``False`` for a validation loss).
        tol: a later candidate wins only when better by more than ``tol`` (ties: the earlier one).
        log: where to log each score (``INFO``).

    Raises:
        ValueError: no candidates, or two candidates with the same label.
    """
    name = key or (lambda c: label(c) if isinstance(c, Mapping) else str(c))
    by_label: dict[str, T] = {}
    scores: dict[str, float] = {}
    for c in candidates:
        lab = name(c)
        if lab in by_label:
            raise ValueError(f"candidates: expected unique labels, got {lab!r} twice")
        by_label[lab] = c
        scores[lab] = float(score(c))
        if log is not None:
            log.info("select %s: validation score %.6g", lab, scores[lab])
    signed = scores if maximize else {k: -v for k, v in scores.items()}
    best = argmax_first(signed, tol=tol)
    return Selection(by_label[best], scores[best], scores)
