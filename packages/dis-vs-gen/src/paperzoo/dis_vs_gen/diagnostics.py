r"""Diagnostics of naive Bayes' assumptions on a feature set (reference ``utils/vis.py``).

The paper's theory needs (i) pooled variances bounded away from zero, (ii) a per-dimension
log-likelihood gap between classes bounded below (a KL-like separation), and (iii) concentration
of the log-likelihood ratio (its variance per dimension bounded). With the fitted NB model
(means :math:`\mu_k`, pooled variances :math:`\sigma^2`) and
:math:`\ell_k(x) = -\tfrac12\sum_i (x_i - \mu_{k,i})^2/\sigma_i^2`:

.. math::

    \mathrm{gap}_{k,k'} = \tfrac1n\,\mathbb E_{x|k}[\ell_k(x) - \ell_{k'}(x)], \qquad
    \mathrm{var}_{k,k'} = \tfrac1n\,\mathrm{Var}_{x|k}[\ell_k(x) - \ell_{k'}(x)],

estimated over the class-:math:`k` rows (population variance).
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.dis_vs_gen.naive_bayes import class_statistics, gaussian_nb_fit, gaussian_nb_logits

__all__ = ["llr_gap", "llr_variance", "pooled_variances"]


def pooled_variances(x: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """The pooled within-class variance per feature, :math:`\\sum_k \\pi_k v_{k,i}`, ``(n,)`` float64.

    Args:
        x: features ``(m, n)``; y: labels ``(m,)``; n_classes: ``K``.
    """
    counts, _, m2 = class_statistics(x, y, n_classes)
    return m2.sum(0) / counts.sum()


def _llr_moments(
    x: Tensor, y: Tensor, n_classes: int, var_smoothing: float
) -> tuple[Tensor, Tensor]:
    means, var, _ = gaussian_nb_fit(x, y, n_classes, var_smoothing)
    zero = torch.zeros(n_classes, dtype=torch.float64, device=x.device)
    ell = gaussian_nb_logits(x.double(), means, var, zero, validate=False)  # (m, K)
    d = ell.gather(1, y.unsqueeze(1)) - ell  # (m, K): l_y(x) - l_k'(x)
    n = x.shape[1]
    counts = torch.bincount(y, minlength=n_classes).double().clamp_min(1).unsqueeze(1)
    s1 = torch.zeros(n_classes, n_classes, dtype=torch.float64, device=x.device)
    s1.index_add_(0, y, d)
    mean = s1 / counts
    s2 = torch.zeros_like(s1).index_add_(0, y, (d - mean[y]).square())
    return mean / n, s2 / counts / n


def llr_gap(x: Tensor, y: Tensor, n_classes: int, var_smoothing: float = 1e-9) -> Tensor:
    """Per-dimension mean log-likelihood gap ``(K, K)``: entry ``[k, k']`` averages
    :math:`(\\ell_k(x) - \\ell_{k'}(x))/n` over the class-``k`` rows (diagonal 0).

    The NB model is fitted on ``x``, ``y`` (pooled variances, absolute ``var_smoothing``).
    """
    return _llr_moments(x, y, n_classes, var_smoothing)[0]


def llr_variance(x: Tensor, y: Tensor, n_classes: int, var_smoothing: float = 1e-9) -> Tensor:
    """Per-dimension variance of the log-likelihood ratio ``(K, K)``: entry ``[k, k']`` is
    :math:`\\mathrm{Var}_{x|k}[\\ell_k(x) - \\ell_{k'}(x)]/n` over the class-``k`` rows."""
    return _llr_moments(x, y, n_classes, var_smoothing)[1]
