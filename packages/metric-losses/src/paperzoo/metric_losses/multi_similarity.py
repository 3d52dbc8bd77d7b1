r"""Multi-Similarity loss with General Pair Weighting (Wang et al., CVPR 2019).

Everything is computed from one similarity matrix ``S`` (B, M) between B anchors and M reference
embeddings (the batch itself, or a cross-batch memory): the miner's thresholds, the pair masks and
the loss. There is no Python loop over anchors or pairs.

Notation (paper, Sec. 4): for anchor :math:`i` with candidate positives
:math:`\hat P_i = \{k \ne i: y_k = y_i\}` and candidate negatives
:math:`\hat N_i = \{k: y_k \ne y_i\}`,

* mining (Eq. 7-8, strict inequalities, thresholds from the *unmined* candidates):
  :math:`N_i = \{k \in \hat N_i: S_{ik} + \epsilon > \min_{j\in\hat P_i} S_{ij}\}`,
  :math:`P_i = \{k \in \hat P_i: S_{ik} - \epsilon < \max_{j\in\hat N_i} S_{ij}\}`;
* weighting (Eq. 11):
  :math:`L_i = \frac1\alpha\log(1+\sum_{k\in P_i}e^{-\alpha(S_{ik}-\lambda)})
  + \frac1\beta\log(1+\sum_{k\in N_i}e^{\beta(S_{ik}-\lambda)})`, :math:`L = \frac1B\sum_i L_i`.

Each ``log(1 + sum exp)`` is a log-sum-exp over ``[0, masked terms]`` shifted by its own row
maximum, so ``beta = 50`` cannot overflow; half-precision inputs are computed in float32.
The backward pass uses the closed-form pair weights (Eq. 12-13): ``dL/dS_ik = -w+_ik / B`` on mined
positives and ``+w-_ik / B`` on mined negatives, so one (B, M) multiply replaces the autograd graph.

One module, one concept (about 750 lines): everything here is a function of the one similarity
matrix ``S`` and its candidate pair masks, the paper's Sec. 3-4 read as one pipeline: the masks,
the miner (Eq. 7-8), the pair weights (GPW, Eq. 12-13, also the loss's backward) and the loss
(Eq. 11) with its functional and module forms. Splitting it would put the weights and the loss,
which share ``_row_terms``, in two modules.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    as_real,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = [
    "MSConfig",
    "MultiSimilarityLoss",
    "MultiSimilarityMiner",
    "PairIndices",
    "Similarity",
    "gpw_weights",
    "ms_pair_weights",
    "multi_similarity_loss",
    "multi_similarity_loss_from_similarity",
    "multi_similarity_masks",
    "pair_masks",
    "similarity_matrix",
]

_NORM_EPS = 1e-12

Similarity = Literal["cosine", "dot"]
"""How embeddings are compared: cosine of L2-normalised rows, or raw inner products."""

_SIMILARITIES: Final[tuple[Similarity, ...]] = ("cosine", "dot")


class PairIndices(NamedTuple):
    """Mined pairs in pytorch-metric-learning's order ``(a1, p, a2, n)``.

    ``(a1[t], p[t])`` are anchor-positive pairs and ``(a2[t], n[t])`` anchor-negative pairs; anchors
    index the embeddings (B rows), positives/negatives index the reference set (M rows).
    """

    a1: Tensor
    p: Tensor
    a2: Tensor
    n: Tensor


@dataclass(frozen=True)
class MSConfig:
    """MS loss + mining hyper-parameters: ``alpha`` α, ``beta`` β, ``base`` λ, ``epsilon`` ε.

    The default equals pytorch-metric-learning's defaults (``alpha=2, beta=50, base=0.5,
    epsilon=0.1``) so that results line up with the peer; the presets give the paper text's and
    the official CUB configuration's values. Recipe "as in the paper" (official CUB run): 16
    classes x 5 images per batch (an m-per-class sampler, m=5, batch 80), 512-d L2-normalised
    head, Adam 3e-5, ``MSConfig.official_cub()``.
    """

    alpha: float = 2.0
    beta: float = 50.0
    base: float = 0.5
    epsilon: float = 0.1

    @classmethod
    def paper(cls) -> MSConfig:
        """Values as quoted from the paper text: α=2, β=50, λ=1, ε=0.1."""
        return cls(alpha=2.0, beta=50.0, base=1.0, epsilon=0.1)

    @classmethod
    def official_cub(cls) -> MSConfig:
        """Official code's CUB config (``configs/example.yaml``): α=2, β=40, λ=0.5, ε=0.1."""
        return cls(alpha=2.0, beta=40.0, base=0.5, epsilon=0.1)

    @classmethod
    def pml(cls) -> MSConfig:
        """pytorch-metric-learning's defaults (identical to ours)."""
        return cls()

    def as_kwargs(self) -> dict[str, float]:
        return asdict(self)


# --------------------------------------------------------------------------- similarity & masks


def similarity_matrix(
    embeddings: Tensor, ref_embeddings: Tensor | None = None, similarity: Similarity = "cosine"
) -> Tensor:
    """Similarity matrix ``S`` (B, M) = <f_i, g_k> (rows L2-normalised first when ``"cosine"``).

    ``embeddings`` (B, D); ``ref_embeddings`` (M, D), or None to use the embeddings themselves
    (M = B). Normalisation clamps the norm at 1e-12, so a zero row gets similarity 0 to everything.
    """
    check_choice("similarity", similarity, _SIMILARITIES)
    check_float_tensor("embeddings", embeddings, ndim=2)
    if ref_embeddings is not None:
        check_float_tensor("ref_embeddings", ref_embeddings, ndim=2)
        _check_same_dim("ref_embeddings", ref_embeddings, "embeddings", embeddings)
    a = embeddings
    if similarity == "cosine":
        a = F.normalize(a, p=2.0, dim=1, eps=_NORM_EPS)
    if ref_embeddings is None:
        return a @ a.transpose(0, 1)
    r = ref_embeddings
    if similarity == "cosine":
        r = F.normalize(r, p=2.0, dim=1, eps=_NORM_EPS)
    return a @ r.transpose(0, 1)


def _check_same_dim(name: str, x: Tensor, other_name: str, other: Tensor) -> None:
    if x.shape[1] != other.shape[1]:
        raise ValueError(
            f"{name}: expected dimension {other.shape[1]} (like {other_name}), got {x.shape[1]}"
        )


def _check_sim_labels(sim: Tensor, labels: Tensor, ref_labels: Tensor | None) -> None:
    """Shape/dtype checks of a precomputed similarity matrix and its labels (no device sync)."""
    check_float_tensor("sim", sim, ndim=2)
    B, M = sim.shape
    check_labels("labels", labels, n=B, validate=False)
    if ref_labels is None:
        if B != M:
            raise ValueError(
                "sim: expected the square batch-vs-batch matrix when ref_labels is None, got "
                f"shape {(B, M)}"
            )
    else:
        check_labels("ref_labels", ref_labels, n=M, validate=False)


def pair_masks(labels: Tensor, ref_labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Candidate positive and negative masks, both bool (B, M).

    ``pos[i, k] = y_i == y_k`` and ``neg[i, k] = y_i != y_k``; when ``ref_labels`` is None the
    reference set is the batch and the self pair ``(i, i)`` is removed from ``pos`` (by index).
    """
    check_labels("labels", labels, validate=False)
    if ref_labels is not None:
        check_labels("ref_labels", ref_labels, validate=False)
    ref = labels if ref_labels is None else ref_labels
    same = labels.unsqueeze(1) == ref.unsqueeze(0)
    neg = ~same
    if ref_labels is None:
        same.fill_diagonal_(False)
    return same, neg


def _mine(sim: Tensor, pos: Tensor, neg: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """MS mining on a detached similarity matrix (strict inequalities, unmined thresholds).

    Written in the official code's and pytorch-metric-learning's arithmetic form
    (``S_n + eps > min S_p`` and ``S_p - eps < max S_n``) so that mined sets match them bitwise.
    An anchor without positives has ``min = +inf`` (mines no negative); one without negatives has
    ``max = -inf`` (mines no positive).
    """
    s = sim.detach()
    inf = torch.tensor(float("inf"), dtype=s.dtype, device=s.device)
    min_pos = torch.where(pos, s, inf).amin(dim=1, keepdim=True)
    max_neg = torch.where(neg, s, -inf).amax(dim=1, keepdim=True)
    neg_keep = neg & (s + epsilon > min_pos)
    pos_keep = pos & (s - epsilon < max_neg)
    return pos_keep, neg_keep


def multi_similarity_masks(
    sim: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    epsilon: float = 0.1,
    mining: bool = True,
) -> tuple[Tensor, Tensor]:
    """Bool (B, M) masks of the pairs in use: mined ``(P, N)``, or all candidates without mining.

    ``sim`` (B, M); ``labels`` (B,); ``ref_labels`` (M,) or None when ``sim`` is square.
    """
    _check_sim_labels(sim, labels, ref_labels)
    pos, neg = pair_masks(labels, ref_labels)
    if not mining:
        return pos, neg
    return _mine(sim, pos, neg, epsilon)


def _masks_from_pairs(
    pairs: PairIndices | tuple[Tensor, ...],
    shape: torch.Size,
    device: torch.device,
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    if len(pairs) != 4:
        raise ValueError(f"pairs: expected a 4-tuple (a1, p, a2, n), got {len(pairs)} tensors")
    a1, p, a2, n = pairs
    B, M = shape
    for name, idx, bound in (("a1", a1, B), ("p", p, M), ("a2", a2, B), ("n", n, M)):
        if (
            not isinstance(idx, Tensor)
            or idx.is_floating_point()
            or idx.is_complex()
            or idx.dtype == torch.bool
            or idx.ndim != 1
        ):
            got = (
                f"{idx.dtype} of shape {tuple(idx.shape)}"
                if isinstance(idx, Tensor)
                else type(idx).__name__
            )
            raise TypeError(f"pairs.{name}: expected a 1-D integer index tensor, got {got}")
        if validate and idx.numel():
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= bound:
                raise ValueError(
                    f"pairs.{name}: expected indices in [0, {bound}), got range [{lo}, {hi}]"
                )
    if a1.shape != p.shape or a2.shape != n.shape:
        raise ValueError(
            "pairs: expected equal lengths of a1 and p and of a2 and n, got "
            f"{a1.shape[0]}, {p.shape[0]}, {a2.shape[0]}, {n.shape[0]}"
        )
    pos = torch.zeros(B, M, dtype=torch.bool, device=device)
    neg = torch.zeros(B, M, dtype=torch.bool, device=device)
    pos[a1.to(device), p.to(device)] = True
    neg[a2.to(device), n.to(device)] = True
    if validate and bool((pos & neg).any()):
        raise ValueError("pairs: expected disjoint positive and negative pairs, got a pair in both")
    return pos, neg


# --------------------------------------------------------------------------- weights


def _row_terms(sim: Tensor, scale: float, base: float, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Per row, with ``z = scale * (S - base)``: ``log(1 + sum_{keep} exp(z))`` and the weights
    ``exp(z) / (1 + sum_{keep} exp(z))`` (B, M).

    Shifted by the row maximum (at least 0) so that no exponential overflows; entries outside
    ``keep`` are exactly 0 in the weights and absent from the sum. Works in place on one fresh
    (B, M) buffer.
    """
    z = sim * scale
    z.add_(-scale * base)
    z.masked_fill_(~keep, float("-inf"))
    shift = z.amax(dim=1, keepdim=True).clamp_min_(0.0)
    z.sub_(shift).exp_()
    denom = z.sum(dim=1, keepdim=True).add_(shift.neg().exp_())
    lse = (shift + denom.log()).squeeze(1)
    return lse, z.div_(denom)


def ms_pair_weights(
    sim: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
) -> tuple[Tensor, Tensor]:
    r"""Closed-form MS pair weights (paper Eq. 12-13), each (B, M), zero outside the masks.

    :math:`w^+_{ik} = 1 / (e^{\alpha(S_{ik}-\lambda)} + \sum_{j\in P_i} e^{\alpha(S_{ik}-S_{ij})})`,
    :math:`w^-_{ik} = 1 / (e^{\beta(\lambda-S_{ik})} + \sum_{j\in N_i} e^{\beta(S_{ij}-S_{ik})})`,
    so that ``dL_i/dS_ik = -w+_ik`` on positives and ``+w-_ik`` on negatives (per anchor, before
    the 1/B of the mean). ``pos_mask``/``neg_mask`` are the pairs in use (e.g. mined).
    """
    for name, mask in (("pos_mask", pos_mask), ("neg_mask", neg_mask)):
        if mask.dtype != torch.bool or mask.shape != sim.shape:
            raise ValueError(
                f"{name}: expected a bool tensor of sim's shape {tuple(sim.shape)}, got "
                f"{mask.dtype} {tuple(mask.shape)}"
            )
    _, w_pos = _row_terms(sim, -alpha, base, pos_mask)
    _, w_neg = _row_terms(sim, beta, base, neg_mask)
    return w_pos, w_neg


def gpw_weights(
    loss_fn: Callable[[Tensor], Tensor],
    sim: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """General Pair Weighting: ``w_ij = |dL/dS_ij|`` by autograd, split into (positive, negative).

    ``loss_fn`` maps a (B, M) similarity matrix to a scalar loss (close over the labels); any
    pair-based loss written on ``S`` works. Returns ``(w_pos, w_neg)`` (B, M), zero outside the
    candidate positive / negative masks (self pairs excluded when ``ref_labels`` is None).
    """
    _check_sim_labels(sim, labels, ref_labels)
    s = sim.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(s)
        (grad,) = torch.autograd.grad(loss, s)
    pos, neg = pair_masks(labels, ref_labels)
    w = grad.abs()
    return w * pos, w * neg


# --------------------------------------------------------------------------- loss


class _MSFromSimilarity(torch.autograd.Function):
    """Per-anchor MS loss from ``S`` with the closed-form backward ``dL_i/dS = w- - w+``."""

    @staticmethod
    def forward(
        ctx: Any,
        sim: Tensor,
        pos_keep: Tensor,
        neg_keep: Tensor,
        alpha: float,
        beta: float,
        base: float,
        valid: Tensor | None,
    ) -> Tensor:
        lse_p, w_p = _row_terms(sim, -alpha, base, pos_keep)
        lse_n, w_n = _row_terms(sim, beta, base, neg_keep)
        losses = lse_p / alpha + lse_n / beta
        grad_s = w_n.sub_(w_p)
        if valid is not None:
            losses = losses * valid
            grad_s.mul_(valid.unsqueeze(1))
        ctx.save_for_backward(grad_s)
        return losses

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Tensor) -> tuple[Tensor | None, ...]:
        # The saved weights are constants of the graph: a second derivative through them would
        # be silently wrong, so building a differentiable gradient is refused.
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the MS loss's closed-form backward is first-order only: create_graph=True "
                "(second-order gradients, gradient penalties) is not supported"
            )
        (grad_s,) = ctx.saved_tensors
        return grad_outputs[0].unsqueeze(1) * grad_s, None, None, None, None, None, None


def _per_anchor_loss(
    sim: Tensor,
    pos_keep: Tensor,
    neg_keep: Tensor,
    alpha: float,
    beta: float,
    base: float,
    skip_incomplete_anchors: bool,
) -> Tensor:
    valid: Tensor | None = None
    if skip_incomplete_anchors:
        valid = (pos_keep.any(dim=1) & neg_keep.any(dim=1)).to(sim.dtype)
    out: Tensor = _MSFromSimilarity.apply(sim, pos_keep, neg_keep, alpha, beta, base, valid)
    return out


def _check_hparams(alpha: float, beta: float, epsilon: float, base: float) -> None:
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    check_positive("epsilon", epsilon, allow_zero=True, allow_inf=True)
    if not math.isfinite(as_real("base", base)):
        raise ValueError(f"base: expected a finite value, got {base!r}")


def _warn_without_pairs(name: str, pos: Tensor, neg: Tensor, skip_incomplete: bool) -> None:
    """Warn when the batch holds no positive or no negative pair at all (one host sync)."""
    has_pos, has_neg = (bool(v) for v in torch.stack([pos.any(), neg.any()]).tolist())
    if has_pos and has_neg:
        return
    why = {
        (False, True): "no positive pair (no two rows share a label)",
        (True, False): "no negative pair (every row has the same label)",
        (False, False): "no positive and no negative pair",
    }[(has_pos, has_neg)]
    if name == "pairs":
        why = f"{why.split(' (')[0]} among the given pairs"
    effect = (
        "the MS loss is 0 with no gradient"
        if skip_incomplete or not (has_pos or has_neg)
        else "the MS loss keeps only its other half (skip_incomplete_anchors=False)"
    )
    warnings.warn(
        f"{name}: the batch has {why}, so {effect}; draw batches of several classes with "
        "several examples each (e.g. paperzoo.core.samplers.MPerClassSampler)",
        RuntimeWarning,
        stacklevel=3,
    )


def multi_similarity_loss_from_similarity(
    sim: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    epsilon: float = 0.1,
    mining: bool = True,
    skip_incomplete_anchors: bool = True,
    reduction: Reduction = "mean",
    pairs: PairIndices | tuple[Tensor, ...] | None = None,
    validate: bool = True,
) -> Tensor:
    """MS loss on a precomputed similarity ``sim`` (B, M); ``labels`` (B,), ``ref_labels`` (M,).

    ``ref_labels=None`` means ``sim`` is the square batch-vs-batch matrix (self pairs excluded).
    ``pairs`` (``(a1, p, a2, n)``) replaces mining and the candidate masks. Returns () for
    ``"mean"``/``"sum"`` (the mean divides by all B anchors, empty anchors count as 0) or (B,).
    ``validate=False`` skips the range checks of ``pairs`` (host-device syncs).
    """
    check_reduction(reduction)
    _check_hparams(alpha, beta, epsilon, base)
    _check_sim_labels(sim, labels, ref_labels)
    if pairs is not None:
        pos_keep, neg_keep = _masks_from_pairs(pairs, sim.shape, sim.device, validate)
        if validate:
            _warn_without_pairs("pairs", pos_keep, neg_keep, skip_incomplete_anchors)
    else:
        pos_keep, neg_keep = pair_masks(labels, ref_labels)
        if validate:
            _warn_without_pairs("labels", pos_keep, neg_keep, skip_incomplete_anchors)
        if mining:
            pos_keep, neg_keep = _mine(sim, pos_keep, neg_keep, epsilon)
    losses = _per_anchor_loss(sim, pos_keep, neg_keep, alpha, beta, base, skip_incomplete_anchors)
    return reduce(losses, reduction)


def _check_embeddings(name: str, x: object) -> Tensor:
    """``x`` if it is a finite floating-point (N, D) tensor with N >= 1 (one host sync)."""
    t = check_float_tensor(name, x, ndim=2, nonempty=True)
    check_finite(name, t)
    return t


def _warn_zero_norm(name: str, x: Tensor) -> None:
    if bool((x.detach().abs().amax(dim=1) == 0).any()):
        warnings.warn(
            f"{name} has zero-norm rows; with similarity='cosine' they are eps-normalised "
            "(norm clamped at 1e-12) and get similarity 0 to everything; their gradient is "
            "scaled by 1/1e-12 (one optimiser step can blow the head up): check the embedding "
            "head or drop those rows",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_inputs(
    embeddings: Tensor,
    labels: Tensor,
    ref_embeddings: Tensor | None,
    ref_labels: Tensor | None,
    similarity: Similarity,
) -> None:
    _check_embeddings("embeddings", embeddings)
    check_labels("labels", labels, n=embeddings.shape[0])
    if (ref_embeddings is None) != (ref_labels is None):
        raise ValueError(
            "ref_embeddings, ref_labels: expected both or neither, got "
            f"ref_embeddings={'a tensor' if ref_embeddings is not None else None}, "
            f"ref_labels={'a tensor' if ref_labels is not None else None}"
        )
    if ref_embeddings is None:
        if embeddings.shape[0] < 2:
            raise ValueError(
                "embeddings: expected at least 2 rows to form pairs when no ref_embeddings are "
                f"given, got shape {tuple(embeddings.shape)}"
            )
    else:
        assert ref_labels is not None
        _check_embeddings("ref_embeddings", ref_embeddings)
        check_labels("ref_labels", ref_labels, n=ref_embeddings.shape[0])
        if ref_embeddings.device != embeddings.device:
            raise ValueError(
                f"ref_embeddings: expected device {embeddings.device} (like embeddings), got "
                f"{ref_embeddings.device}"
            )
        _check_same_dim("ref_embeddings", ref_embeddings, "embeddings", embeddings)
    if similarity == "cosine":
        _warn_zero_norm("embeddings", embeddings)
        if ref_embeddings is not None:
            _warn_zero_norm("ref_embeddings", ref_embeddings)


def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    pairs: PairIndices | tuple[Tensor, ...] | None = None,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    epsilon: float = 0.1,
    mining: bool = True,
    similarity: Similarity = "cosine",
    skip_incomplete_anchors: bool = True,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    """Functional twin of :class:`MultiSimilarityLoss` (same arguments, see there)."""
    check_choice("similarity", similarity, _SIMILARITIES)
    check_reduction(reduction)
    _check_hparams(alpha, beta, epsilon, base)
    if validate:
        _check_inputs(embeddings, labels, ref_embeddings, ref_labels, similarity)
    out_dtype = embeddings.dtype
    compute_dtype = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        emb = embeddings.to(compute_dtype)
        ref = None if ref_embeddings is None else ref_embeddings.to(compute_dtype)
        sim = similarity_matrix(emb, ref, similarity)
        out = multi_similarity_loss_from_similarity(
            sim,
            labels.to(sim.device),
            None if ref_labels is None else ref_labels.to(sim.device),
            alpha=alpha,
            beta=beta,
            base=base,
            epsilon=epsilon,
            mining=mining,
            skip_incomplete_anchors=skip_incomplete_anchors,
            reduction=reduction,
            pairs=pairs,
            validate=validate,
        )
    return out.to(out_dtype)


class MultiSimilarityLoss(nn.Module):
    r"""Multi-Similarity loss with its hard-pair miner (Wang et al., CVPR 2019, Eq. 7, 8, 11).

    Args:
        alpha: α, scale of the positive term (paper 2; official ``SCALE_POS`` 2).
        beta: β, scale of the negative term (default 50 = paper text and pytorch-metric-learning;
            official CUB config 40, see :meth:`MSConfig.official_cub`).
        base: λ, similarity threshold (default 0.5 = official code and pytorch-metric-learning;
            the paper text quotes 1, see :meth:`MSConfig.paper`).
        epsilon: ε, mining margin (0.1, hard-coded in the official code). Increasing it never
            removes a pair.
        mining: mine pairs with ε first (the paper's two-step recipe); ``False`` weights all
            candidate pairs.
        similarity: ``"cosine"`` (rows L2-normalised inside, eps 1e-12) or ``"dot"`` (raw inner
            products, the official code's ``feats @ feats.T`` for a head that already normalises).
        skip_incomplete_anchors: ``True`` (official code): an anchor whose mined positive or
            negative set is empty contributes 0. ``False`` (pytorch-metric-learning's loss + miner):
            it keeps its non-empty half. Under MS mining ``P_i`` is empty iff ``N_i`` is, so the
            flag only matters with ``mining=False`` or user ``pairs``.
        reduction: ``"mean"`` (sum over anchors / B, empty anchors count 0, as both references),
            ``"sum"`` or ``"none"`` (per-anchor (B,)).
        validate: check the inputs (shapes, dtypes, NaN/Inf, negative labels, zero-norm rows,
            devices) on every call, and warn (``RuntimeWarning``) on a batch with no positive or
            no negative pair at all (the loss is 0 there); the checks cost a few host-device
            syncs, ``False`` skips them in a tight training loop.

    Labels may live on another device than the embeddings (they are moved); a reference set
    must be on the embeddings' device.

    Shapes: ``forward(embeddings (B, D), labels (B,), ref_embeddings (M, D) | None,
    ref_labels (M,) | None, pairs=(a1, p, a2, n) | None)`` -> () or (B,). With a reference set
    (cross-batch memory) anchors are compared with it only and no pair is excluded as a self pair.

    Deviation: self pairs are removed by index (``k != i``); the official code drops every
    positive with ``S >= 1 - 1e-5``, which also drops exact duplicates (issue #14 of the official
    repo). Reason: duplicates are legitimate positives, and index exclusion works for ``"dot"``.
    Deviation: an anchor without positives contributes 0 (the official loop crashes on
    ``min`` of an empty tensor, research-xbm #15). Deviation: inputs are L2-normalised when
    ``similarity="cosine"`` (the official loss assumes a normalising head). Deviation: float16 /
    bfloat16 inputs are computed in float32 (β=50 overflows half precision); the result is cast
    back. Deviation: the backward pass is the closed-form first derivative, so second-order
    gradients (``create_graph=True`` then backward again) raise a RuntimeError.
    Pytorch-metric-learning returns 0 for any batch where each of a1, p, a2, n has at most
    one entry; we do not copy that quirk.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        epsilon: float = 0.1,
        mining: bool = True,
        similarity: Similarity = "cosine",
        skip_incomplete_anchors: bool = True,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        _check_hparams(alpha, beta, epsilon, base)
        check_choice("similarity", similarity, _SIMILARITIES)
        check_reduction(reduction)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.base = float(base)
        self.epsilon = float(epsilon)
        self.mining = mining
        self.similarity: Similarity = similarity
        self.skip_incomplete_anchors = skip_incomplete_anchors
        self.reduction: Reduction = reduction
        self.validate = validate

    @classmethod
    def from_config(cls, config: MSConfig, **kwargs: Any) -> MultiSimilarityLoss:
        """Build from an :class:`MSConfig` preset; ``kwargs`` set the other arguments."""
        return cls(
            alpha=config.alpha,
            beta=config.beta,
            base=config.base,
            epsilon=config.epsilon,
            **kwargs,
        )

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        pairs: PairIndices | tuple[Tensor, ...] | None = None,
    ) -> Tensor:
        return multi_similarity_loss(
            embeddings,
            labels,
            ref_embeddings,
            ref_labels,
            pairs,
            alpha=self.alpha,
            beta=self.beta,
            base=self.base,
            epsilon=self.epsilon,
            mining=self.mining,
            similarity=self.similarity,
            skip_incomplete_anchors=self.skip_incomplete_anchors,
            reduction=self.reduction,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, base={self.base}, epsilon={self.epsilon}, "
            f"mining={self.mining}, similarity={self.similarity!r}, "
            f"skip_incomplete_anchors={self.skip_incomplete_anchors}, reduction={self.reduction!r}"
        )


class MultiSimilarityMiner(nn.Module):
    """The MS hard-pair miner alone (paper Eq. 7-8), returning :class:`PairIndices`.

    A negative ``k`` is kept for anchor ``i`` iff ``S_ik + ε > min_{j in P^_i} S_ij``; a positive
    iff ``S_ik - ε < max_{j in N^_i} S_ij`` (strict; thresholds from the unmined candidate sets).
    Mined positives always share the anchor's label, negatives never do, and no self pair is
    returned (when no reference set is given). Pairs are returned in row-major order.

    ``forward(embeddings (B, D), labels (B,), ref_embeddings (M, D) | None,
    ref_labels (M,) | None)``. On degenerate batches (a single class, or all labels distinct)
    every returned index tensor is empty (int64). ``validate=False`` skips the input checks and
    their host-device syncs (the nonzero of the masks still syncs, as any index output must).
    """

    def __init__(
        self, epsilon: float = 0.1, similarity: Similarity = "cosine", validate: bool = True
    ) -> None:
        super().__init__()
        check_positive("epsilon", epsilon, allow_zero=True, allow_inf=True)
        check_choice("similarity", similarity, _SIMILARITIES)
        self.epsilon = float(epsilon)
        self.similarity: Similarity = similarity
        self.validate = validate

    @torch.no_grad()
    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> PairIndices:
        if self.validate:
            _check_inputs(embeddings, labels, ref_embeddings, ref_labels, self.similarity)
        emb = (
            embeddings.float()
            if embeddings.dtype in (torch.float16, torch.bfloat16)
            else embeddings
        )
        ref = None
        if ref_embeddings is not None:
            ref = ref_embeddings.to(emb.dtype)
        sim = similarity_matrix(emb, ref, self.similarity)
        pos, neg = multi_similarity_masks(
            sim,
            labels.to(sim.device),
            None if ref_labels is None else ref_labels.to(sim.device),
            epsilon=self.epsilon,
        )
        a1, p = pos.nonzero(as_tuple=True)
        a2, n = neg.nonzero(as_tuple=True)
        return PairIndices(a1, p, a2, n)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, similarity={self.similarity!r}"
