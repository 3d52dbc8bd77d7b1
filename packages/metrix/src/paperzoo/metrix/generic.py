"""The generic pair-label form of metric-learning losses (Metrix, Sec. 3), with soft labels.

Every anchor ``a`` scores candidates ``x`` with a positivity label ``y(a, x)`` in [0, 1]:

    l(a) = tau( sigma_pos( sum_x y(a,x) rho_pos(s(a,x)) ) + sigma_neg( sum_x (1 - y(a,x)) rho_neg(s(a,x)) ) )

With hard labels (y in {0, 1}) this is the ordinary loss; with the interpolated labels of mixed
examples (``y~ = lam y(a,x) + (1 - lam) y(a,x')``) it is the Metrix mixed loss. ``s`` is the cosine
similarity of the L2-normalised embeddings (``similarity="cosine"``) or their Euclidean distance
(``"euclidean"``, the official contrastive code's ``LpDistance``). Instances:

* :func:`contrastive_generic`: rho_pos(d) = [d - m_pos]_+, rho_neg(d) = [m_neg - d]_+ on the
  distance, sigma = tau = identity; ``reduction="avg_nonzero_pairs"`` is the official/PML reduction
  (mean of the non-zero positive terms + mean of the non-zero negative terms).
* :func:`multi_similarity_generic`: rho_pos(s) = exp(-beta (s - m)), sigma_pos(t) = log(1 + t) / beta,
  rho_neg(s) = exp(gamma (s - m)), sigma_neg(t) = log(1 + t) / gamma (MS without mining).
* :class:`ProxyAnchorGeneric` (module ``proxy_anchor``): anchors are class proxies.

Source note: the paper text was not retrievable; the form is reconstructed from its description
and matches the official contrastive code and pytorch-metric-learning (tested to 1e-10).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    REDUCTIONS,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    reduce,
)

__all__ = [
    "GenericPairLoss",
    "PairReduction",
    "PairSimilarity",
    "contrastive_generic",
    "generic_pair_loss",
    "multi_similarity_generic",
    "pair_scores",
    "positivity",
]

PairSimilarity = Literal["cosine", "euclidean"]
#: the core's reductions plus the official contrastive pair reduction
PairReduction = Literal["mean", "sum", "none", "avg_nonzero_pairs"]
_PAIR_REDUCTIONS: tuple[str, ...] = (*REDUCTIONS, "avg_nonzero_pairs")
_SIMS: tuple[str, ...] = ("cosine", "euclidean")
_NORM_EPS = 1e-12
Elementwise = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- building blocks


def _identity(t: Tensor) -> Tensor:
    return t


def _hinge_above(d: Tensor, margin: float) -> Tensor:
    """[d - margin]_+ (positive contrastive term on a distance)."""
    return torch.relu(d - margin)


def _hinge_below(d: Tensor, margin: float) -> Tensor:
    """[margin - d]_+ (negative contrastive term on a distance)."""
    return torch.relu(margin - d)


def _exp_scaled(s: Tensor, scale: float, shift: float) -> Tensor:
    """exp(scale * (s - shift))."""
    return torch.exp(scale * (s - shift))


def _log1p_scaled(t: Tensor, scale: float) -> Tensor:
    """log(1 + t) / scale."""
    return torch.log1p(t) / scale


def positivity(
    labels: Tensor, ref_labels: Tensor | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Hard positivity labels ``y[a, x] = 1[labels[a] == ref_labels[x]]``, float (A, M).

    Args:
        labels: (A,) integer labels of the anchors.
        ref_labels: (M,) integer labels of the candidates (default: ``labels``).
        dtype: float dtype of the result (default: the default dtype).

    Raises:
        TypeError / ValueError: labels not 1-D integer.
    """
    check_labels("labels", labels, validate=False)
    ref = labels if ref_labels is None else ref_labels
    if ref_labels is not None:
        check_labels("ref_labels", ref_labels, validate=False)
    return (labels[:, None] == ref[None, :]).to(dtype or torch.get_default_dtype())


def pair_scores(
    anchor: Tensor, cand: Tensor, similarity: PairSimilarity, normalize: bool = True
) -> Tensor:
    """(A, M) cosine similarities or Euclidean distances of the (L2-normalised) embeddings.

    The Euclidean path is ``torch.cdist`` like pytorch-metric-learning's ``LpDistance``.
    ``normalize=False`` keeps the candidates as given (the anchors are always normalised).
    """
    a = F.normalize(anchor, dim=1, eps=_NORM_EPS)
    c = F.normalize(cand, dim=1, eps=_NORM_EPS) if normalize else cand
    if similarity == "cosine":
        return a @ c.T
    return torch.cdist(a, c)


def _check_pair_inputs(
    anchor: Tensor, cand: Tensor, y: Tensor, valid: Tensor | None, validate: bool
) -> None:
    check_float_tensor("anchor_emb", anchor, ndim=2, nonempty=True)
    check_float_tensor("cand_emb", cand, ndim=2, nonempty=True)
    if cand.shape[1] != anchor.shape[1]:
        raise ValueError(
            f"cand_emb: expected dimension {anchor.shape[1]} (like anchor_emb), got {cand.shape[1]}"
        )
    shape = (anchor.shape[0], cand.shape[0])
    check_float_tensor("y", y)
    if tuple(y.shape) != shape:
        raise ValueError(f"y: expected shape {shape} (anchors x candidates), got {tuple(y.shape)}")
    if valid is not None:
        if valid.dtype != torch.bool:
            raise TypeError(f"valid: expected a bool tensor, got {valid.dtype}")
        if tuple(valid.shape) != shape:
            raise ValueError(f"valid: expected shape {shape}, got {tuple(valid.shape)}")
    check_finite("anchor_emb", anchor, validate=validate)
    check_finite("cand_emb", cand, validate=validate)
    if validate and bool(((y < 0) | (y > 1) | ~torch.isfinite(y)).any()):
        raise ValueError("y: expected soft positivity labels in [0, 1], got values outside")


def _terms(
    score: Tensor, y: Tensor, mask: Tensor | None, rho_pos: Elementwise, rho_neg: Elementwise
) -> tuple[Tensor, Tensor]:
    """Weighted pair terms y rho_pos(s) and (1 - y) rho_neg(s), zero where ``mask`` is False."""
    pos = y * rho_pos(score)
    neg = (1 - y) * rho_neg(score)
    if mask is not None:
        pos = torch.where(mask, pos, torch.zeros_like(pos))
        neg = torch.where(mask, neg, torch.zeros_like(neg))
    return pos, neg


def _avg_nonzero(t: Tensor) -> Tensor:
    """Mean of the strictly positive entries (0 when none), like PML's ``AvgNonZeroReducer``."""
    count = (t > 0).sum()
    return t.sum() / count.clamp(min=1).to(t.dtype)


def generic_pair_loss(
    anchor_emb: Tensor,
    cand_emb: Tensor,
    y: Tensor,
    valid: Tensor | None = None,
    *,
    rho_pos: Elementwise,
    rho_neg: Elementwise,
    sigma_pos: Elementwise = _identity,
    sigma_neg: Elementwise = _identity,
    tau: Elementwise = _identity,
    similarity: PairSimilarity = "cosine",
    reduction: PairReduction = "mean",
    normalize: bool = True,
    validate: bool = True,
) -> Tensor:
    """The generic soft-label pair loss per anchor (module docstring's equation).

    Args:
        anchor_emb: (A, D) anchor embeddings (L2-normalised inside).
        cand_emb: (M, D) candidate embeddings (normalised inside unless ``normalize=False``).
        y: (A, M) soft positivity labels in [0, 1].
        valid: (A, M) bool, which pairs count (default all; exclude self pairs in a batch).
        rho_pos, rho_neg, sigma_pos, sigma_neg, tau: elementwise functions of the form.
        similarity: ``"cosine"`` (s = cosine) or ``"euclidean"`` (s = distance).
        reduction: ``"none"`` -> (A,) per anchor; ``"mean"``/``"sum"`` over anchors;
            ``"avg_nonzero_pairs"`` -> mean of the non-zero positive pair terms + mean of the
            non-zero negative pair terms (official contrastive; needs sigma = tau = identity).
        normalize: normalise the candidates (PML does; off = use mixed embeddings as given).
        validate: check finiteness and the range of ``y`` (device syncs).

    Returns:
        (A,) or a scalar.

    Raises:
        TypeError: non-float embeddings or ``y``, non-bool ``valid``.
        ValueError: shapes, non-finite input, ``y`` outside [0, 1], unknown reduction.
    """
    check_choice("reduction", reduction, _PAIR_REDUCTIONS)
    check_choice("similarity", similarity, _SIMS)
    _check_pair_inputs(anchor_emb, cand_emb, y, valid, validate)
    score = pair_scores(anchor_emb, cand_emb, similarity, normalize)
    pos, neg = _terms(score, y.to(score.dtype), valid, rho_pos, rho_neg)
    if reduction == "avg_nonzero_pairs":
        if not (sigma_pos is _identity and sigma_neg is _identity and tau is _identity):
            raise ValueError(
                "reduction: expected 'avg_nonzero_pairs' only with identity sigma/tau, got a "
                "non-identity sigma or tau"
            )
        return _avg_nonzero(pos) + _avg_nonzero(neg)
    per_anchor = tau(sigma_pos(pos.sum(1)) + sigma_neg(neg.sum(1)))
    return reduce(per_anchor, reduction)


class GenericPairLoss(nn.Module):
    """Module twin of :func:`generic_pair_loss` (see there for the equation and shapes).

    ``forward(anchor_emb (A, D), cand_emb (M, D), y (A, M), valid (A, M) | None)`` -> (A,) or a
    scalar. :meth:`batch_loss` is the ordinary in-batch loss on hard labels (all ordered pairs
    i != j). Use :func:`contrastive_generic` / :func:`multi_similarity_generic` for ready forms.
    """

    def __init__(
        self,
        rho_pos: Elementwise,
        rho_neg: Elementwise,
        sigma_pos: Elementwise = _identity,
        sigma_neg: Elementwise = _identity,
        tau: Elementwise = _identity,
        *,
        similarity: PairSimilarity = "cosine",
        reduction: PairReduction = "mean",
        name: str = "generic",
        validate: bool = True,
    ) -> None:
        super().__init__()
        check_choice("reduction", reduction, _PAIR_REDUCTIONS)
        check_choice("similarity", similarity, _SIMS)
        self.rho_pos, self.rho_neg = rho_pos, rho_neg
        self.sigma_pos, self.sigma_neg, self.tau = sigma_pos, sigma_neg, tau
        self.similarity: PairSimilarity = similarity
        self.reduction: PairReduction = reduction
        self.name = name
        self.validate = validate

    def forward(
        self,
        anchor_emb: Tensor,
        cand_emb: Tensor,
        y: Tensor,
        valid: Tensor | None = None,
        normalize: bool = True,
    ) -> Tensor:
        return generic_pair_loss(
            anchor_emb,
            cand_emb,
            y,
            valid,
            rho_pos=self.rho_pos,
            rho_neg=self.rho_neg,
            sigma_pos=self.sigma_pos,
            sigma_neg=self.sigma_neg,
            tau=self.tau,
            similarity=self.similarity,
            reduction=self.reduction,
            normalize=normalize,
            validate=self.validate,
        )

    def batch_loss(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The in-batch loss on hard labels: embeddings (B, D), labels (B,) -> (B,) or scalar."""
        check_float_tensor("embeddings", embeddings, ndim=2, nonempty=True)
        check_labels("labels", labels, n=embeddings.shape[0], validate=self.validate)
        y = positivity(labels, dtype=embeddings.dtype)
        valid = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        return self.forward(embeddings, embeddings, y, valid)

    def pair_terms(
        self, score: Tensor, y: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(y rho_pos(s), (1 - y) rho_neg(s)) on precomputed scores of any shape."""
        return _terms(score, y, mask, self.rho_pos, self.rho_neg)

    def combine(self, pos_sum: Tensor, neg_sum: Tensor) -> Tensor:
        """tau(sigma_pos(pos_sum) + sigma_neg(neg_sum)) per anchor."""
        return self.tau(self.sigma_pos(pos_sum) + self.sigma_neg(neg_sum))

    def extra_repr(self) -> str:
        return f"{self.name}, similarity={self.similarity!r}, reduction={self.reduction!r}"


def contrastive_generic(
    pos_margin: float = 0.0,
    neg_margin: float = 0.5,
    distance: PairSimilarity = "euclidean",
    reduction: PairReduction = "avg_nonzero_pairs",
    validate: bool = True,
) -> GenericPairLoss:
    """Contrastive loss in generic form: rho_pos = [s - m_pos]_+, rho_neg = [m_neg - s]_+.

    Defaults are the official Metrix code (PML ``ContrastiveLoss(pos_margin=0, neg_margin=0.5)``,
    ``LpDistance`` on normalised embeddings, avg-non-zero reducers). With ``distance="cosine"``
    the terms use the cosine *distance* 1 - s so the margins keep their meaning.
    """
    check_choice("distance", distance, _SIMS)
    check_positive("neg_margin", neg_margin)
    check_positive("pos_margin", pos_margin, allow_zero=True)
    rho_pos = partial(_hinge_above, margin=pos_margin)
    rho_neg = partial(_hinge_below, margin=neg_margin)
    if distance == "cosine":
        rho_pos = partial(_cos_dist_hinge_above, margin=pos_margin)
        rho_neg = partial(_cos_dist_hinge_below, margin=neg_margin)
    return GenericPairLoss(
        rho_pos,
        rho_neg,
        similarity=distance,
        reduction=reduction,
        name="contrastive",
        validate=validate,
    )


def _cos_dist_hinge_above(s: Tensor, margin: float) -> Tensor:
    return torch.relu(1.0 - s - margin)


def _cos_dist_hinge_below(s: Tensor, margin: float) -> Tensor:
    return torch.relu(margin - (1.0 - s))


def multi_similarity_generic(
    beta: float = 2.0,
    gamma: float = 50.0,
    margin: float = 0.5,
    reduction: PairReduction = "mean",
    validate: bool = True,
) -> GenericPairLoss:
    """Multi-Similarity (no mining) in generic form (beta positive scale, gamma negative scale).

    Equals PML ``MultiSimilarityLoss(alpha=beta, beta=gamma, base=margin)`` without a miner and
    ``paperzoo.metric_losses.multi_similarity_loss(mining=False, skip_incomplete_anchors=False)``.
    """
    check_positive("beta", beta)
    check_positive("gamma", gamma)
    if not math.isfinite(margin):
        raise ValueError(f"margin: expected a finite number, got {margin!r}")
    return GenericPairLoss(
        partial(_exp_scaled, scale=-beta, shift=margin),
        partial(_exp_scaled, scale=gamma, shift=margin),
        partial(_log1p_scaled, scale=beta),
        partial(_log1p_scaled, scale=gamma),
        similarity="cosine",
        reduction=reduction,
        name="multi_similarity",
        validate=validate,
    )
