r"""The paper's Gaussian-mixture simulation (reference ``data/generate_data.py``).

Class 0 has mean :math:`-\mathbf 1_n`, class :math:`k \ge 1` mean :math:`2^{k-1}\mathbf 1_n`; every
class shares one covariance:

* ``"easy"``: :math:`\mathrm{diag}(n, \dots, n, 1, \dots, 1)` (``floor(n/2)`` entries ``n``), so
  naive Bayes' assumption holds;
* ``"hard"``: :math:`A^\top A` with its diagonal replaced by the easy diagonal, :math:`A` uniform
  on :math:`[-1, 1]` from NumPy's legacy generator seeded 0 (the reference's matrix, bit for bit).
  That matrix is indefinite for ``n >= 10``; NumPy's ``multivariate_normal`` only warns and samples
  through its SVD, i.e. from :math:`|C| = Q|\Lambda|Q^\top`. We do that explicitly
  (:math:`x = \mu + z\,\mathrm{diag}(\sqrt s) V^\top` with ``U, s, V^T = svd(C)``) and call
  :math:`|C|` the true covariance (:func:`mixture_parameters`).

For ``K > 2`` the reference rescales the features: :math:`(x - 2^{K-3}) / 2^{K-3}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.checks import check_choice, check_float_tensor, check_positive_int

__all__ = [
    "MixtureParameters",
    "SimulationMode",
    "bayes_error",
    "gaussian_mixture",
    "mixture_parameters",
    "two_class_error",
]

SimulationMode = Literal["easy", "hard"]
"""``"easy"``: diagonal covariance (NB's assumption holds); ``"hard"``: correlated features."""


@dataclass(frozen=True)
class MixtureParameters:
    """The true mixture: ``means (K, n)``, shared ``cov (n, n)`` and ``sampler (n, n)`` with
    ``x = mean + z @ sampler`` (``z`` standard normal), all float64, after the ``K > 2``
    rescaling (``scale``, ``offset``: ``x -> (x - offset) / scale``)."""

    means: Tensor
    cov: Tensor
    sampler: Tensor
    offset: float
    scale: float


def _easy_diagonal(n: int) -> np.ndarray:
    half = n // 2
    return np.array([float(n)] * half + [1.0] * (n - half))


def mixture_parameters(
    n_features: int, n_classes: int, mode: SimulationMode = "easy"
) -> MixtureParameters:
    """The means, covariance and sampling matrix of the reference simulation.

    Args:
        n_features: ``n >= 1``; n_classes: ``K >= 2``; mode: ``"easy"`` or ``"hard"``.

    Returns:
        :class:`MixtureParameters`; ``cov`` is the covariance the samples really have (``|C|``
        for the indefinite hard matrix).
    """
    n = check_positive_int("n_features", n_features)
    k = check_positive_int("n_classes", n_classes, minimum=2)
    check_choice("mode", mode, ("easy", "hard"))
    diag = _easy_diagonal(n)
    if mode == "easy":
        cov = np.diag(diag)
        sampler = np.diag(np.sqrt(diag))
    else:
        a = 2 * np.random.RandomState(0).rand(n, n) - 1  # the reference: np.random.seed(0)
        c = a.T @ a
        c[np.diag_indices(n)] = diag
        _, s, vt = np.linalg.svd(c)  # numpy's multivariate_normal: x = z @ (sqrt(s)[:, None] * vt)
        sampler = np.sqrt(s)[:, None] * vt
        cov = sampler.T @ sampler  # = Q |Lambda| Q^T
    centres = np.array([-1.0] + [2.0 ** (j - 1) for j in range(1, k)])
    offset, scale = (2.0 ** (k - 3), 2.0 ** (k - 3)) if k > 2 else (0.0, 1.0)
    means = (np.repeat(centres[:, None], n, axis=1) - offset) / scale
    return MixtureParameters(
        means=torch.from_numpy(means),
        cov=torch.from_numpy(cov / scale**2),
        sampler=torch.from_numpy(sampler / scale),
        offset=offset,
        scale=scale,
    )


def gaussian_mixture(
    n_features: int,
    n_classes: int,
    mode: SimulationMode = "easy",
    n_per_class: int = 100,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Balanced samples of the simulation, class by class (labels sorted).

    Returns:
        ``x (K * n_per_class, n)`` float64 and ``y (K * n_per_class,)`` int64.

    Deviation: torch's generator replaces NumPy's global one for ``z`` (same distribution, other
    draws); the hard covariance matrix itself is the reference's.
    """
    p = mixture_parameters(n_features, n_classes, mode)
    per = check_positive_int("n_per_class", n_per_class)
    g = torch.Generator().manual_seed(int(seed))
    y = torch.arange(n_classes).repeat_interleave(per)
    z = torch.randn(y.shape[0], p.means.shape[1], generator=g, dtype=torch.float64)
    return p.means[y] + z @ p.sampler, y


def _linear_bayes_scores(x: Tensor, means: Tensor, cov: Tensor, log_prior: Tensor) -> Tensor:
    """Bayes scores of a shared-covariance Gaussian mixture (class-independent terms dropped)."""
    proj: Tensor = torch.linalg.solve(cov, means.T)  # (n, K) = Sigma^-1 mu_k
    scores: Tensor = x @ proj - 0.5 * (means * proj.T).sum(1) + log_prior
    return scores


def bayes_error(
    n_features: int,
    n_classes: int,
    mode: SimulationMode = "easy",
    *,
    n_samples: int = 100_000,
    seed: int = 12345,
    chunk: int = 20_000,
) -> float:
    """Monte-Carlo Bayes error of the (balanced) simulation, with the true densities.

    The Bayes classifier of a shared-covariance mixture is linear: ``argmax_k x^T S^-1 mu_k -
    1/2 mu_k^T S^-1 mu_k`` (equal priors), with ``S`` the true covariance of
    :func:`mixture_parameters`. Sampled in chunks of ``chunk`` rows.

    Returns:
        The error rate over ``n_samples`` fresh draws (standard error about
        ``sqrt(e (1 - e) / n_samples)``).
    """
    p = mixture_parameters(n_features, n_classes, mode)
    total = check_positive_int("n_samples", n_samples)
    step = check_positive_int("chunk", chunk)
    k = n_classes
    log_prior = torch.full((k,), -math.log(k), dtype=torch.float64)
    g = torch.Generator().manual_seed(int(seed))
    wrong = 0
    done = 0
    while done < total:
        b = min(step, total - done)
        y = torch.randint(0, k, (b,), generator=g)
        z = torch.randn(b, p.means.shape[1], generator=g, dtype=torch.float64)
        x = p.means[y] + z @ p.sampler
        pred = _linear_bayes_scores(x, p.means, p.cov, log_prior).argmax(1)
        wrong += int((pred != y).sum())
        done += b
    return wrong / total


def _phi(t: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-t / math.sqrt(2.0))


def two_class_error(
    w: Tensor, b: float, means: Tensor, cov: Tensor, priors: tuple[float, float] = (0.5, 0.5)
) -> float:
    r"""Exact 0-1 error of "class 1 iff :math:`w^\top x + b > 0`" on a two-class Gaussian mixture.

    :math:`\pi_0\Phi((w^\top\mu_0 + b)/s) + \pi_1\Phi(-(w^\top\mu_1 + b)/s)`,
    :math:`s = \sqrt{w^\top\Sigma w}`; no sampling. With the Bayes rule this is
    :math:`\Phi(-\Delta/2)` (equal priors, :math:`\Delta` the Mahalanobis distance of the means).

    Args:
        w: ``(n,)``; b: the offset; means: ``(2, n)``; cov: shared ``(n, n)``; priors: class
            probabilities.
    """
    check_float_tensor("w", w, ndim=1)
    check_float_tensor("means", means, ndim=2)
    if means.shape != (2, w.shape[0]) or cov.shape != (w.shape[0], w.shape[0]):
        raise ValueError(
            f"means, cov: expected shapes (2, {w.shape[0]}) and ({w.shape[0]}, {w.shape[0]}), "
            f"got {tuple(means.shape)} and {tuple(cov.shape)}"
        )
    wd, md, cd = w.double(), means.double(), cov.double()
    s = torch.sqrt(wd @ cd @ wd)
    a = (md @ wd + b) / s
    err = priors[0] * _phi(a[0]) + priors[1] * _phi(-a[1])
    return float(err)
