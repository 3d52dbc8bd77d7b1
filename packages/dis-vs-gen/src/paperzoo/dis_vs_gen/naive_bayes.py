r"""Gaussian naive Bayes as a linear head (Zheng et al., ICML 2023, section 3; Ng & Jordan, 2001).

The paper's multiclass NB shares one diagonal covariance across classes (the *pooled* variance):

.. math::

    \pi_k = m_k / m, \quad \mu_k = \tfrac{1}{m_k}\sum_{y_j = k} x_j, \quad
    \sigma_i^2 = \sum_k \pi_k v_{k,i} + \epsilon, \quad
    s_k(x) = \log \pi_k - \tfrac12 \sum_i (x_i - \mu_{k,i})^2 / \sigma_i^2,

with :math:`v_{k,i}` the class-:math:`k` population variance (``ddof = 0``) of feature :math:`i`.
Since the :math:`x_i^2` term is shared by every class, the same softmax comes from the linear head
:math:`W_k = \mu_k / \sigma^2`, :math:`b_k = \log \pi_k - \tfrac12 \sum_i \mu_{k,i}^2/\sigma_i^2`
(:meth:`GaussianNBHead.as_linear`). ``covariance="per_class"`` is scikit-learn's GaussianNB (one
diagonal variance per class: a quadratic, not a linear, classifier).

Statistics are per-class counts, means and sums of squared deviations (``M2``), merged across
chunks with Chan et al.'s parallel update, so :meth:`GaussianNBHead.partial_fit` on chunks equals one
:meth:`GaussianNBHead.fit` on their concatenation.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
)

__all__ = [
    "Covariance",
    "GaussianNBHead",
    "Prior",
    "Smoothing",
    "class_statistics",
    "gaussian_nb_fit",
    "gaussian_nb_logits",
]

Smoothing = Literal["absolute", "relative"]
"""``"absolute"``: add ``var_smoothing`` to every variance (the reference code); ``"relative"``:
add ``var_smoothing * max_i Var(x_i)`` (scikit-learn's ``epsilon_``; ``Var`` over all rows, classes
pooled)."""
Prior = Literal["empirical", "uniform"]
"""``"empirical"``: :math:`\\pi_k = m_k/m`; ``"uniform"``: :math:`\\pi_k = 1/K` (balanced few-shot)."""
Covariance = Literal["pooled", "per_class"]
"""``"pooled"``: one diagonal variance shared by the classes (the paper; a linear head);
``"per_class"``: one per class (scikit-learn's GaussianNB)."""


def _check_xy(x: object, y: object, n_classes: int, validate: bool) -> tuple[Tensor, Tensor]:
    xt = check_float_tensor("x", x, ndim=2, nonempty=True)
    check_finite("x", xt, validate=validate)
    yt = check_labels("y", y, n=xt.shape[0], num_classes=n_classes, like=xt, validate=validate)
    return xt, yt


def class_statistics(
    x: Tensor, y: Tensor, n_classes: int, *, validate: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class counts, means and sums of squared deviations of one chunk, in float64.

    Two passes over ``x`` (class sums, then squared deviations from the class means), each
    ``O(m n)`` with ``index_add_``; no loop over classes or rows.

    Args:
        x: features ``(m, n)``.
        y: labels ``(m,)`` in ``[0, n_classes)``.
        n_classes: ``K``.
        validate: check finiteness and the label range (one host sync each).

    Returns:
        ``counts (K,)``, ``means (K, n)`` (0 for an absent class) and ``m2 (K, n)``
        (:math:`\\sum_{y_j=k} (x_j - \\mu_k)^2`), all float64.
    """
    k = check_positive_int("n_classes", n_classes, minimum=2)
    x, y = _check_xy(x, y, k, validate)
    xd = x.to(torch.float64)
    counts = torch.zeros(k, dtype=torch.float64, device=x.device).index_add_(
        0, y, torch.ones_like(xd[:, 0])
    )
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, y, xd)
    means = sums / counts.clamp_min(1.0).unsqueeze(1)
    m2 = torch.zeros_like(sums).index_add_(0, y, (xd - means[y]).square())
    return counts, means, m2


def _merge(
    a: tuple[Tensor, Tensor, Tensor], b: tuple[Tensor, Tensor, Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """Chan et al.'s parallel merge of (counts, means, m2) per class."""
    na, mua, m2a = a
    nb, mub, m2b = b
    n = na + nb
    safe = n.clamp_min(1.0).unsqueeze(1)
    delta = mub - mua
    mean = mua + delta * (nb.unsqueeze(1) / safe)
    m2 = m2a + m2b + delta.square() * (na * nb).unsqueeze(1) / safe
    return n, mean, m2


def _finish(
    counts: Tensor,
    means: Tensor,
    m2: Tensor,
    *,
    var_smoothing: float,
    smoothing: Smoothing,
    prior: Prior,
    covariance: Covariance,
    allow_missing_classes: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """(means, var, log_prior) from the sufficient statistics (float64)."""
    present = counts > 0
    if not allow_missing_classes and not bool(present.all()):
        missing = torch.nonzero(~present).flatten().tolist()
        raise ValueError(
            f"y: expected every class in [0, {counts.shape[0]}) in the training set, got none of "
            f"class(es) {missing} (pass allow_missing_classes=True for a -inf logit)"
        )
    m = counts.sum()
    if bool(m < 2):
        raise ValueError(f"x: expected at least 2 training rows, got {int(m)}")
    if smoothing == "absolute":
        eps = torch.tensor(var_smoothing, dtype=torch.float64, device=means.device)
    else:  # sklearn: var_smoothing * max over features of the variance of all rows
        grand = (counts.unsqueeze(1) * means).sum(0) / m
        total_m2 = m2.sum(0) + (counts.unsqueeze(1) * (means - grand).square()).sum(0)
        total_var = total_m2 / m
        eps = var_smoothing * total_var.max()
        if bool(total_var.max() > 1e6 * total_var.min().clamp_min(1e-300)):
            warnings.warn(
                "x: feature variances span more than a factor 1e6; relative var_smoothing adds "
                "a fraction of the largest to every feature (scale the features first, e.g. "
                "minmax_scale)",
                stacklevel=4,
            )
    if covariance == "pooled":
        var = m2.sum(0) / m + eps  # = sum_k pi_k v_k + eps
    else:
        var = m2 / counts.clamp_min(1.0).unsqueeze(1) + eps
    if prior == "empirical":
        log_prior = torch.log(counts / m)  # -inf for an absent class
    else:
        log_prior = torch.full_like(counts, -math.log(counts.shape[0]))
        log_prior = log_prior.masked_fill(~present, -math.inf)
    return means, var, log_prior


def gaussian_nb_fit(
    x: Tensor,
    y: Tensor,
    n_classes: int,
    var_smoothing: float = 1e-9,
    *,
    smoothing: Smoothing = "absolute",
    prior: Prior = "empirical",
    covariance: Covariance = "pooled",
    allow_missing_classes: bool = False,
    validate: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fit Gaussian naive Bayes in closed form (one call; see :class:`GaussianNBHead` to stream).

    Args:
        x: features ``(m, n)``, float.
        y: labels ``(m,)``, integer in ``[0, K)``.
        n_classes: ``K >= 2``.
        var_smoothing: :math:`\\epsilon` (``"absolute"``) or its fraction of the largest feature
            variance (``"relative"``); ``>= 0``. Reference and scikit-learn default ``1e-9``.
        smoothing: ``"absolute"`` (reference code, default) or ``"relative"`` (scikit-learn).
        prior: ``"empirical"`` (default) or ``"uniform"``.
        covariance: ``"pooled"`` (the paper, default) or ``"per_class"`` (scikit-learn).
        allow_missing_classes: a class absent from ``y`` gets ``log_prior = -inf`` (its logit is
            ``-inf``) instead of an error.
        validate: check finiteness and label range (host syncs).

    Returns:
        ``means (K, n)``, ``var`` (``(n,)`` pooled or ``(K, n)`` per class) and
        ``log_prior (K,)``, all float64.

    Raises:
        TypeError: ``x`` not float or ``y`` not integer.
        ValueError: ``x`` not 2-D, NaN/inf, labels out of range, fewer than 2 rows or classes, a
            missing class, ``var_smoothing < 0``.
    """
    eps = check_positive("var_smoothing", var_smoothing, allow_zero=True)
    check_choice("smoothing", smoothing, ("absolute", "relative"))
    check_choice("prior", prior, ("empirical", "uniform"))
    check_choice("covariance", covariance, ("pooled", "per_class"))
    stats = class_statistics(x, y, n_classes, validate=validate)
    return _finish(
        *stats,
        var_smoothing=eps,
        smoothing=smoothing,
        prior=prior,
        covariance=covariance,
        allow_missing_classes=allow_missing_classes,
    )


def gaussian_nb_logits(
    x: Tensor, means: Tensor, var: Tensor, log_prior: Tensor, *, validate: bool = True
) -> Tensor:
    """Naive-Bayes class scores ``(B, K)`` (the joint log-likelihood up to a per-row constant).

    Pooled ``var (n,)``: :math:`s_k(x) = \\log\\pi_k - \\tfrac12\\sum_i (x_i-\\mu_{k,i})^2/\\sigma_i^2`.
    Per-class ``var (K, n)``: the same with :math:`\\sigma_{k,i}^2` minus
    :math:`\\tfrac12\\sum_i \\log\\sigma_{k,i}^2`. Computed as one matrix product of the expanded
    square (no loop over classes); in float64 when the statistics are float64, returned in
    ``x``'s dtype.

    Args:
        x: features ``(B, n)``.
        means: ``(K, n)``; var: ``(n,)`` or ``(K, n)``, positive; log_prior: ``(K,)``.
        validate: check ``x`` for NaN/inf (a host sync).

    Returns:
        ``(B, K)`` logits; ``softmax`` gives the posterior ``p(y = k | x)``.

    Raises:
        TypeError/ValueError: ``x`` not a 2-D float tensor, a feature-count mismatch, NaN/inf.
    """
    check_float_tensor("x", x, ndim=2, nonempty=True)
    check_float_tensor("means", means, ndim=2)
    if x.shape[1] != means.shape[1]:
        raise ValueError(
            f"x: expected {means.shape[1]} features (columns), got shape {tuple(x.shape)}"
        )
    if var.shape not in ((means.shape[1],), tuple(means.shape)):
        raise ValueError(
            f"var: expected shape ({means.shape[1]},) or {tuple(means.shape)}, got "
            f"{tuple(var.shape)}"
        )
    if log_prior.shape != (means.shape[0],):
        raise ValueError(
            f"log_prior: expected shape ({means.shape[0]},), got {tuple(log_prior.shape)}"
        )
    check_finite("x", x, validate=validate)
    xs = x.to(means.dtype)
    prec = var.reciprocal()
    if var.dim() == 1:
        quad = (xs.square() * prec).sum(1, keepdim=True)  # (B, 1)
        cross = xs @ (means * prec).T  # (B, K)
        const = (means.square() * prec).sum(1)  # (K,)
        out = log_prior - 0.5 * (quad - 2.0 * cross + const)
    else:
        quad = xs.square() @ prec.T
        cross = xs @ (means * prec).T
        const = (means.square() * prec).sum(1) + var.log().sum(1)
        out = log_prior - 0.5 * (quad - 2.0 * cross + const)
    return out.to(x.dtype)


class GaussianNBHead(nn.Module):
    """Gaussian naive Bayes on frozen features, as an ``nn.Module`` with buffers (no parameters).

    ``fit(x, y)`` (closed form), ``partial_fit`` (streaming, Chan merge), ``forward(x) ->
    logits (B, K)``, ``predict_proba``, ``predict``, ``as_linear() -> nn.Linear`` (pooled only).
    The statistics are float64 buffers by default (``dtype``); ``.to(dtype)`` converts them.

    Args:
        n_features: ``n``; n_classes: ``K >= 2``.
        var_smoothing: :math:`\\epsilon`, ``>= 0`` (default ``1e-9``, the reference's and
            scikit-learn's value).
        smoothing: ``"absolute"``: :math:`\\sigma^2 \\mathrel{+}= \\epsilon` (reference code,
            default); ``"relative"``: :math:`\\sigma^2 \\mathrel{+}= \\epsilon \\max_i
            \\mathrm{Var}(x_i)` over every row seen so far (scikit-learn's ``epsilon_``). Scale
            the features first (MinMax or standard): with feature scales that differ by ``1e6``
            a relative epsilon swamps the small ones (scikit-learn #24732).
        prior: ``"empirical"`` or ``"uniform"``.
        covariance: ``"pooled"`` (the paper) or ``"per_class"`` (scikit-learn's GaussianNB).
        allow_missing_classes: a class never seen gets a ``-inf`` logit instead of an error.
        dtype: of the statistics buffers (default float64).

    Deviation: in ``"relative"`` mode the epsilon comes from all rows seen so far; scikit-learn's
    ``partial_fit`` takes it from the latest chunk alone (the two agree for one ``fit``).
    """

    counts: Tensor
    means: Tensor
    m2: Tensor

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        var_smoothing: float = 1e-9,
        smoothing: Smoothing = "absolute",
        prior: Prior = "empirical",
        covariance: Covariance = "pooled",
        *,
        allow_missing_classes: bool = False,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_classes = check_positive_int("n_classes", n_classes, minimum=2)
        self.var_smoothing = check_positive("var_smoothing", var_smoothing, allow_zero=True)
        self.smoothing: Smoothing = check_choice("smoothing", smoothing, ("absolute", "relative"))
        self.prior: Prior = check_choice("prior", prior, ("empirical", "uniform"))
        self.covariance: Covariance = check_choice(
            "covariance", covariance, ("pooled", "per_class")
        )
        self.allow_missing_classes = bool(allow_missing_classes)
        k, n = self.n_classes, self.n_features
        self.register_buffer("counts", torch.zeros(k, dtype=dtype))
        self.register_buffer("means", torch.zeros(k, n, dtype=dtype))
        self.register_buffer("m2", torch.zeros(k, n, dtype=dtype))

    def reset_parameters(self) -> None:
        """Forget every statistic (an unfitted head)."""
        for t in (self.counts, self.means, self.m2):
            t.zero_()

    @property
    def fitted(self) -> bool:
        """Whether any rows have been seen."""
        return bool(self.counts.sum() > 0)

    def _check_x(self, x: Tensor, validate: bool) -> Tensor:
        check_float_tensor("x", x, ndim=2, nonempty=True)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"x: expected {self.n_features} features (columns), got shape {tuple(x.shape)}"
            )
        check_finite("x", x, validate=validate)
        return x

    @torch.no_grad()
    def partial_fit(self, x: Tensor, y: Tensor, *, validate: bool = True) -> GaussianNBHead:
        """Add a chunk ``x (m, n)``, ``y (m,)`` to the statistics (Chan et al. merge); returns self."""
        self._check_x(x, validate)
        chunk = class_statistics(x, y, self.n_classes, validate=validate)
        dt = self.means.dtype
        old = (self.counts.double(), self.means.double(), self.m2.double())
        merged = _merge(old, chunk)
        for buf, new in zip((self.counts, self.means, self.m2), merged, strict=True):
            buf.copy_(new.to(dt))
        return self

    def fit(self, x: Tensor, y: Tensor, *, validate: bool = True) -> GaussianNBHead:
        """Reset and fit on ``x (m, n)``, ``y (m,)``; returns self."""
        self.reset_parameters()
        self.partial_fit(x, y, validate=validate)
        self.estimates()  # raises on too few rows / missing classes
        return self

    def estimates(self) -> tuple[Tensor, Tensor, Tensor]:
        """The fitted ``(means (K, n), var, log_prior (K,))`` in the buffers' dtype.

        Raises:
            RuntimeError: before any fit; ValueError: fewer than 2 rows, or a missing class
                without ``allow_missing_classes``.
        """
        if not self.fitted:
            raise RuntimeError("GaussianNBHead: call fit(x, y) before using the head")
        means, var, log_prior = _finish(
            self.counts.double(),
            self.means.double(),
            self.m2.double(),
            var_smoothing=self.var_smoothing,
            smoothing=self.smoothing,
            prior=self.prior,
            covariance=self.covariance,
            allow_missing_classes=self.allow_missing_classes,
        )
        dt = self.means.dtype
        return means.to(dt), var.to(dt), log_prior.to(dt)

    def forward(self, x: Tensor, *, validate: bool = True) -> Tensor:
        """Logits ``(B, K)`` of ``x (B, n)`` (:func:`gaussian_nb_logits`), in ``x``'s dtype."""
        self._check_x(x, validate)
        means, var, log_prior = self.estimates()
        return gaussian_nb_logits(x, means, var, log_prior, validate=False)

    def predict_proba(self, x: Tensor) -> Tensor:
        """Posterior ``p(y = k | x)``, ``(B, K)``."""
        logits: Tensor = self(x)
        return logits.softmax(dim=1)

    def predict(self, x: Tensor) -> Tensor:
        """The most probable class, ``(B,)`` int64."""
        logits: Tensor = self(x)
        return logits.argmax(dim=1)

    def as_linear(self) -> nn.Linear:
        """The equivalent linear head: ``W_k = mu_k / sigma^2``, ``b_k = log pi_k - 1/2 sum mu^2/sigma^2``.

        Its logits differ from :meth:`forward`'s by the per-row constant ``-1/2 sum x^2/sigma^2``
        (same softmax, same argmax).

        Raises:
            ValueError: ``covariance="per_class"`` (a quadratic classifier).
        """
        if self.covariance != "pooled":
            raise ValueError(
                "covariance: as_linear needs the pooled (shared) variance, got 'per_class'"
            )
        means, var, log_prior = self.estimates()
        lin = nn.Linear(self.n_features, self.n_classes, dtype=means.dtype, device=means.device)
        with torch.no_grad():
            lin.weight.copy_(means / var)
            lin.bias.copy_(log_prior - 0.5 * (means.square() / var).sum(1))
        return lin

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, n_classes={self.n_classes}, "
            f"var_smoothing={self.var_smoothing}, smoothing={self.smoothing!r}, "
            f"prior={self.prior!r}, covariance={self.covariance!r}"
        )
