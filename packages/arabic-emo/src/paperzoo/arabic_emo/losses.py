r"""The three terms of the hybrid loss (spec section 3, step 5), each a function and a module twin.

With ``p = sigmoid(z)`` the ``(N, K)`` label probabilities, ``y`` the ``(N, K)`` 0/1 targets and
``h`` the ``(N, d)`` summary embeddings:

- :func:`weighted_bce_loss`: class-weighted binary cross-entropy (``L_wbce``);
- :func:`label_correlation_loss`: pushes strongly co-occurring labels to similar probabilities
  (``L_corr``, Laplacian form) or the batch correlation of ``p`` towards ``C`` (align form);
- :func:`multilabel_contrastive_loss`: pulls together examples that share an emotion and pushes
  apart those that share none (``L_con``, pairwise margin form, or a multi-label SupCon).

The paper's exact equations could not be retrieved (spec section 3): these are the package's
documented reconstruction of its description; parity with the paper is unverified.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.arabic_emo.stats import check_binary_labels, check_correlation_matrix
from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = [
    "ContrastiveMode",
    "CorrelationMode",
    "LabelCorrelationLoss",
    "MultiLabelContrastiveLoss",
    "WeightedBCELoss",
    "label_correlation_loss",
    "multilabel_contrastive_loss",
    "weighted_bce_loss",
]

CorrelationMode = Literal["laplacian", "align"]
"""Form of the label-correlation term."""
ContrastiveMode = Literal["pairwise", "supcon"]
"""Form of the contrastive term."""

_PAIR_EPS = 1e-12  # inside the sqrt of a squared distance: finite gradients at distance 0


def check_logits(name: str, logits: object, validate: bool) -> Tensor:
    """``logits`` if it is a finite, non-empty, floating ``(N, K)`` tensor."""
    x = check_float_tensor(name, logits, 2, nonempty=True)
    check_finite(name, x, validate=validate)
    return x


def _check_targets(
    targets: object, like: Tensor, *, binary: bool, validate: bool, name: str = "targets"
) -> Tensor:
    """``targets`` as ``like``'s dtype: same ``(N, K)`` shape and device; 0/1 when ``binary``,
    in ``[0, 1]`` otherwise (soft targets)."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(targets).__name__}")
    if targets.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got dtype {targets.dtype}")
    if targets.shape != like.shape:
        raise ValueError(
            f"{name}: expected shape {tuple(like.shape)} (as the logits), got {tuple(targets.shape)}"
        )
    if targets.device != like.device:
        raise ValueError(f"{name}: expected device {like.device}, got {targets.device}")
    if binary:
        check_binary_labels(name, targets, validate=validate)
    elif validate and not bool(((targets >= 0) & (targets <= 1)).all()):
        raise ValueError(f"{name}: expected values in [0, 1], got values outside")
    return targets.to(like.dtype)


def _check_label_vector(name: str, v: Tensor | None, like: Tensor) -> Tensor | None:
    if v is None:
        return None
    if not isinstance(v, Tensor) or not v.is_floating_point():
        raise TypeError(f"{name}: expected a floating (K,) tensor or None, got {type(v).__name__}")
    k = like.shape[1]
    if v.shape != (k,):
        raise ValueError(f"{name}: expected shape ({k},) for {k} labels, got {tuple(v.shape)}")
    return v.to(like.device, like.dtype)


# ----------------------------------------------------------------------------- weighted BCE


def weighted_bce_loss(
    logits: Tensor,
    targets: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Class-weighted binary cross-entropy with logits (``L_wbce``).

    .. math:: \ell_n = \frac1K \sum_k w_k\,[-\rho_k y_{nk}\log\sigma(z_{nk})
              - (1-y_{nk})\log(1-\sigma(z_{nk}))]

    ``w`` (``weight``) scales both terms of label k (the ``"balanced"`` weights of
    :func:`~paperzoo.arabic_emo.stats.class_weights`: it re-weights labels against each other but
    leaves each label's optimal probability unchanged); ``rho`` (``pos_weight``) scales the
    positive term only, as ``BCEWithLogitsLoss(pos_weight=...)`` (``"pos_weight"`` weights: it
    moves rare labels' optimum up and so raises their recall). ``mean`` is
    :math:`\frac{1}{NK}\sum_{n,k}`; with both weights ``None`` it equals
    ``F.binary_cross_entropy_with_logits(logits, targets)``.

    Args:
        logits: ``(N, K)`` label logits ``z``.
        targets: ``(N, K)`` targets in ``[0, 1]`` (soft targets allowed for this term).
        weight: ``(K,)`` per-label weights ``w`` or ``None`` (all 1).
        pos_weight: ``(K,)`` positive-term weights ``rho`` or ``None`` (all 1).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(N,)``, ``l_n``).
        validate: check finiteness and the target range (host syncs).

    Returns:
        A scalar, or ``(N,)`` with ``reduction="none"``.

    Raises:
        TypeError: non-floating logits or weights. ValueError: not 2-D, empty batch, shape or K
            mismatch, targets outside ``[0, 1]``, NaN/inf logits, unknown reduction.
    """
    red = check_reduction(reduction)
    z = check_logits("logits", logits, validate)
    y = _check_targets(targets, z, binary=False, validate=validate)
    w = _check_label_vector("weight", weight, z)
    pw = _check_label_vector("pos_weight", pos_weight, z)
    per = F.binary_cross_entropy_with_logits(z, y, pos_weight=pw, reduction="none")
    if w is not None:
        per = per * w
    return reduce(per.mean(dim=1), red)


class WeightedBCELoss(nn.Module):
    """Module twin of :func:`weighted_bce_loss`; the weights are buffers (they follow ``.to``).

    Args:
        weight: ``(K,)`` per-label weights (e.g. ``class_weights(train_labels, "balanced")``).
        pos_weight: ``(K,)`` positive-term weights (``class_weights(train_labels, "pos_weight")``).
        reduction, validate: as :func:`weighted_bce_loss`.
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        pos_weight: Tensor | None = None,
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.validate = validate
        self.register_buffer("weight", None if weight is None else weight.detach().clone())
        self.register_buffer(
            "pos_weight", None if pos_weight is None else pos_weight.detach().clone()
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """``logits``, ``targets``: ``(N, K)`` → scalar or ``(N,)``."""
        return weighted_bce_loss(
            logits, targets, self.weight, self.pos_weight, self.reduction, validate=self.validate
        )


# ----------------------------------------------------------------------------- label correlation


def _laplacian_rows(p: Tensor, c: Tensor) -> Tensor:
    """``(N,)``: ``(1/K^2) sum_jk C_jk (p_j - p_k)^2 = (2/K^2) (p'Dp - p'Cp)``, ``D = diag(C 1)``."""
    k = p.shape[1]
    degree = c.sum(dim=1)
    quad = (p * p) @ degree - ((p @ c) * p).sum(dim=1)
    # a nonnegative C makes the form >= 0; rounding can leave -1e-17 where it is 0
    return 2.0 * quad.clamp_min(0.0) / (k * k)


def _batch_correlation(p: Tensor, eps: float = 1e-8) -> Tensor:
    """``(K, K)`` Pearson correlation of the columns of ``p`` (population std with ``eps``),
    diagonal 0."""
    centred = p - p.mean(dim=0, keepdim=True)
    std = torch.sqrt(centred.pow(2).mean(dim=0) + eps)
    z = centred / std
    corr = z.T @ z / p.shape[0]
    return corr - torch.diag_embed(corr.diagonal())


def label_correlation_loss(
    logits: Tensor,
    correlation: Tensor,
    mode: CorrelationMode = "laplacian",
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Label-correlation term ``L_corr`` on ``p = sigmoid(logits)``.

    ``"laplacian"`` (default), per example:

    .. math:: \ell_n = \frac{1}{K^2}\sum_{j,k} C_{jk}(p_{nj}-p_{nk})^2
              = \frac{2}{K^2}\, p_n^\top (D - C)\, p_n,\quad D = \mathrm{diag}(C\mathbf 1)

    so labels that co-occur in training are pushed to similar probabilities (``mean`` over the
    batch gives the spec's :math:`\frac{1}{NK^2}\sum_n\sum_{jk}`). Row n depends on example n
    alone. The quadratic form is clamped at 0 (for a ``C`` with negative entries, i.e.
    ``clip_negative=False``, the double sum can be negative and the clamp changes it).

    ``"align"``: :math:`\|\mathrm{corr}_{batch}(p) - C\|_F^2 / K^2` (batch Pearson correlation of
    the predicted probabilities, ``eps = 1e-8`` in the std, diagonals of both set to 0), one value
    for the whole batch: ``"none"`` repeats it per row, so ``"mean"`` is the value and ``"sum"`` is
    ``N`` times it. Deviation: the spec leaves the diagonal open; we compare off-diagonal entries
    only (``C``'s diagonal is 0 by construction).

    Args:
        logits: ``(N, K)`` label logits.
        correlation: ``(K, K)`` symmetric ``C`` (from
            :func:`~paperzoo.arabic_emo.stats.label_correlation`).
        mode: ``"laplacian"`` or ``"align"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).
        validate: check finiteness and the symmetry of ``C`` (host syncs).

    Returns:
        A scalar, or ``(N,)`` with ``reduction="none"``.

    Raises:
        TypeError: non-floating input. ValueError: not 2-D, empty batch, NaN/inf, ``C`` not
            ``(K, K)`` or not symmetric, unknown mode or reduction.
    """
    red = check_reduction(reduction)
    check_choice("mode", mode, ("laplacian", "align"))
    z = check_logits("logits", logits, validate)
    c = check_correlation_matrix("correlation", correlation, z.shape[1], validate=validate)
    c = c.to(z.device, z.dtype)
    p = torch.sigmoid(z)
    if mode == "laplacian":
        rows = _laplacian_rows(p, c)
    else:
        value = (_batch_correlation(p) - (c - torch.diag_embed(c.diagonal()))).pow(2).sum()
        rows = (value / (z.shape[1] ** 2)).expand(z.shape[0])
    return reduce(rows, red)


class LabelCorrelationLoss(nn.Module):
    """Module twin of :func:`label_correlation_loss`; ``correlation`` ``(K, K)`` is a buffer.

    ``forward(logits (N, K))`` → scalar or ``(N,)``.
    """

    correlation: Tensor

    def __init__(
        self,
        correlation: Tensor,
        mode: CorrelationMode = "laplacian",
        reduction: Reduction = "mean",
        *,
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, ("laplacian", "align"))
        self.mode: CorrelationMode = mode
        self.reduction = check_reduction(reduction)
        self.validate = validate
        check_correlation_matrix("correlation", correlation, int(correlation.shape[0]))
        self.register_buffer("correlation", correlation.detach().clone())

    def forward(self, logits: Tensor) -> Tensor:
        """``logits``: ``(N, K)`` → scalar or ``(N,)``."""
        return label_correlation_loss(
            logits, self.correlation, self.mode, self.reduction, validate=self.validate
        )


# ----------------------------------------------------------------------------- contrastive


def _pairwise_rows(h: Tensor, y: Tensor, margin: float) -> Tensor:
    """``(N,)``: mean over ``b != a`` of ``s d^2 + (1 - s) max(0, m - d)^2``."""
    n = h.shape[0]
    sq = h.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (h @ h.T)).clamp_min(0.0)
    d = torch.sqrt(d2 + _PAIR_EPS)
    share = ((y @ y.T) > 0).to(h.dtype)
    pair = share * d2 + (1.0 - share) * F.relu(margin - d).pow(2)
    off = 1.0 - torch.eye(n, dtype=h.dtype, device=h.device)
    return (pair * off).sum(dim=1) / (n - 1)


def _supcon_rows(h: Tensor, y: Tensor, temperature: float) -> Tensor:
    """``(N,)``: ``-sum_b w_ab log softmax_{c != a}(h_a.h_c / t)_b / sum_b w_ab``, Jaccard ``w``."""
    n = h.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=h.device)
    logits = (h @ h.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = torch.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    inter = y @ y.T
    union = y.sum(dim=1)[:, None] + y.sum(dim=1)[None, :] - inter
    w = torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(inter))
    w = w.masked_fill(eye, 0.0)
    total = w.sum(dim=1)
    return -(w * log_prob).sum(dim=1) / total.clamp_min(1e-12)


def multilabel_contrastive_loss(
    embeddings: Tensor,
    targets: Tensor,
    mode: ContrastiveMode = "pairwise",
    margin: float = 1.0,
    temperature: float = 0.1,
    reduction: Reduction = "mean",
    *,
    normalize: bool = True,
    validate: bool = True,
) -> Tensor:
    r"""Multi-label contrastive term ``L_con`` on the summary embeddings ``h``.

    ``"pairwise"`` (default): with ``s_ab = 1[y_a . y_b > 0]`` (the two share at least one
    emotion) and ``d_ab = ||h_a - h_b||``, each pair costs
    :math:`s_{ab} d_{ab}^2 + (1-s_{ab})\max(0, m - d_{ab})^2`. Row a of ``"none"`` is the mean over
    its ``N - 1`` partners, so ``"mean"`` is the spec's mean over the ``N(N-1)/2`` pairs ``a < b``.
    ``d`` is ``sqrt(d^2 + 1e-12)`` in the hinge (a plain sqrt has a NaN gradient at distance 0,
    e.g. duplicate tweets); the gradient there is 0, so identical embeddings of a disjoint pair are
    never pushed apart.

    ``"supcon"``: a multi-label supervised contrastive loss: anchor a's row is
    :math:`-\sum_{b\ne a} w_{ab}\log\frac{e^{h_a\cdot h_b/\tau}}{\sum_{c\ne a}e^{h_a\cdot h_c/\tau}}
    / \sum_{b\ne a} w_{ab}` with Jaccard pair weights :math:`w_{ab} = |y_a\cap y_b| / |y_a\cup
    y_b|` (0 for an anchor without any partner sharing a label).

    The term couples the examples of a batch by definition. A batch of one has no pair: the loss
    is 0 (with a graph) and a ``UserWarning`` says so.

    Args:
        embeddings: ``(N, d)`` summary embeddings; L2-normalised here when ``normalize``.
        targets: ``(N, K)`` 0/1 labels.
        mode: ``"pairwise"`` or ``"supcon"``.
        margin: ``m`` of the pairwise form (1.0).
        temperature: ``tau`` of the SupCon form (0.1).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``, one value per anchor).
        normalize: L2-normalise ``h`` first (default True, the spec's ``h``).
        validate: check finiteness and 0/1 targets (host syncs).

    Returns:
        A scalar, or ``(N,)`` with ``reduction="none"``.

    Raises:
        TypeError: non-floating embeddings. ValueError: not 2-D, empty batch, N mismatch,
            targets not 0/1, NaN/inf, ``margin``/``temperature`` not positive, unknown mode.
    """
    red = check_reduction(reduction)
    check_choice("mode", mode, ("pairwise", "supcon"))
    m = check_positive("margin", margin)
    t = check_positive("temperature", temperature)
    h = check_float_tensor("embeddings", embeddings, 2, nonempty=True)
    check_finite("embeddings", h, validate=validate)
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets: expected a torch.Tensor, got {type(targets).__name__}")
    y = check_binary_labels("targets", targets, n=h.shape[0], validate=validate)
    if y.device != h.device:
        raise ValueError(f"targets: expected device {h.device}, got {y.device}")
    y = y.to(h.dtype)
    if normalize:
        h = F.normalize(h, dim=1)
    if h.shape[0] == 1:
        warnings.warn(
            "multilabel_contrastive_loss: a batch of one has no pair; the loss is 0",
            UserWarning,
            stacklevel=2,
        )
        return reduce(h.sum(dim=1) * 0.0, red)
    rows = _pairwise_rows(h, y, m) if mode == "pairwise" else _supcon_rows(h, y, t)
    return reduce(rows, red)


class MultiLabelContrastiveLoss(nn.Module):
    """Module twin of :func:`multilabel_contrastive_loss` (same arguments and defaults).

    ``forward(embeddings (N, d), targets (N, K))`` → scalar or ``(N,)``.
    """

    def __init__(
        self,
        mode: ContrastiveMode = "pairwise",
        margin: float = 1.0,
        temperature: float = 0.1,
        reduction: Reduction = "mean",
        *,
        normalize: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, ("pairwise", "supcon"))
        self.mode: ContrastiveMode = mode
        self.margin = check_positive("margin", margin)
        self.temperature = check_positive("temperature", temperature)
        self.reduction = check_reduction(reduction)
        self.normalize = normalize
        self.validate = validate

    def forward(self, embeddings: Tensor, targets: Tensor) -> Tensor:
        """``embeddings``: ``(N, d)``; ``targets``: ``(N, K)`` 0/1 → scalar or ``(N,)``."""
        return multilabel_contrastive_loss(
            embeddings,
            targets,
            self.mode,
            self.margin,
            self.temperature,
            self.reduction,
            normalize=self.normalize,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, margin={self.margin}, temperature={self.temperature}"
