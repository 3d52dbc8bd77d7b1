"""Paired tests over seeds and per-setting ranks, in plain Python/NumPy (no scipy).

:func:`paired_t_test` is the two-sided paired t-test; its p-value uses the closed form of the
Student-t distribution for an integer number of degrees of freedom (Abramowitz & Stegun 26.7.3-4),
exact for the seed counts used here. :func:`sign_test` is the exact two-sided binomial sign test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PairedTest", "average_ranks", "paired_t_test", "sign_test", "student_t_two_sided_p"]


def student_t_two_sided_p(t: float, df: int) -> float:
    r"""``P(|T| >= |t|)`` for Student's t with ``df`` (integer >= 1) degrees of freedom.

    With :math:`\theta = \arctan(|t| / \sqrt{\nu})`, :math:`A = P(|T| < |t|)` is
    :math:`\frac{2}{\pi}\big(\theta + \sin\theta \sum_{j=0}^{(\nu-3)/2} a_j \cos^{2j+1}\theta\big)`
    for odd :math:`\nu` (:math:`a_0 = 1`, :math:`a_j = a_{j-1}\,2j/(2j+1)`) and
    :math:`\sin\theta \sum_{j=0}^{(\nu-2)/2} b_j \cos^{2j}\theta` for even :math:`\nu`
    (:math:`b_0 = 1`, :math:`b_j = b_{j-1}(2j-1)/(2j)`); the p-value is :math:`1 - A`.

    Raises:
        ValueError: ``df`` below 1 or a NaN ``t``.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df: expected an integer >= 1, got {df!r}")
    if math.isnan(t):
        raise ValueError("t: expected a number, got NaN")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, c
        for j in range((df - 1) // 2):
            if j > 0:
                term *= c * c * (2 * j) / (2 * j + 1)
            total += term
        a = 2.0 / math.pi * (theta + s * total) if df > 1 else 2.0 * theta / math.pi
    else:
        total, term = 0.0, 1.0
        for j in range(df // 2):
            if j > 0:
                term *= c * c * (2 * j - 1) / (2 * j)
            total += term
        a = s * total
    return min(1.0, max(0.0, 1.0 - a))


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of a method against a baseline over seeds.

    Attributes:
        n: number of pairs (seeds).
        mean_diff: mean of ``method - baseline``.
        t: the t statistic (``±inf`` when every difference is the same non-zero number,
            0 when all are zero; NaN for one pair).
        p_t: two-sided p-value of the paired t-test (NaN for one pair).
        wins, losses: pairs where the method is strictly above / below the baseline.
        p_sign: two-sided exact sign-test p-value over the non-tied pairs (1 when all tie).
    """

    n: int
    mean_diff: float
    t: float
    p_t: float
    wins: int
    losses: int
    p_sign: float


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: ``min(1, 2 P(X <= min(wins, losses)))``, ``X ~ Bin(n, 1/2)``."""
    n = wins + losses
    if wins < 0 or losses < 0:
        raise ValueError(f"wins, losses: expected non-negative counts, got {wins}, {losses}")
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_t_test(method: Sequence[float], baseline: Sequence[float]) -> PairedTest:
    """Paired t-test and sign test of ``method`` against ``baseline`` (same seeds, same order).

    Raises:
        ValueError: sequences of different lengths, or empty.
    """
    a = np.asarray(method, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"method, baseline: expected two non-empty 1-D sequences of equal length, "
            f"got {a.shape} and {b.shape}"
        )
    d = a - b
    n = int(d.size)
    mean = float(d.mean())
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    if n < 2:
        t, p = math.nan, math.nan
    else:
        sd = float(d.std(ddof=1))
        if sd == 0.0:
            t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
            p = 1.0 if mean == 0.0 else 0.0
        else:
            t = mean / (sd / math.sqrt(n))
            p = student_t_two_sided_p(t, n - 1)
    return PairedTest(n, mean, t, p, wins, losses, sign_test(wins, losses))


def average_ranks(
    scores: Mapping[str, float], *, higher_is_better: bool = True
) -> dict[str, float]:
    """Rank 1 for the best score; ties share the mean of the ranks they span; NaN ranks last."""
    if not scores:
        return {}
    keys = list(scores)
    vals = np.array([scores[k] for k in keys], dtype=np.float64)
    key = -vals if higher_is_better else vals.copy()
    key[np.isnan(key)] = np.inf
    order = np.argsort(key, kind="stable")
    ranks = np.empty(len(keys))
    i = 0
    while i < len(keys):
        j = i
        while j + 1 < len(keys) and key[order[j + 1]] == key[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return {k: float(r) for k, r in zip(keys, ranks, strict=True)}
