r"""The UNPG cross-entropy: a margin softmax whose denominator also holds extra negatives.

.. math::

    L_i = -s ψ_i + \log\Big( e^{s ψ_i} + \sum_{j \ne y_i} e^{s \cos θ_{ij}}
          + \sum_{t \in F(S_n^{ML})} e^{s t} \Big)

The extra negatives are the same for every row, so their part of the denominator is one scalar
``E = logsumexp(s·t)`` and ``L_i = logaddexp(logsumexp_j(s·logits_ij), E) - s ψ_i``: ``O(B C + M)``
work and memory, where the official code concatenates the negatives to every row, a
``(B, C + M)`` logit matrix (``materialize=True`` keeps that form for parity tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = ["COSINE_TOLERANCE", "extra_negative_lse", "unpg_cross_entropy"]

COSINE_TOLERANCE = 1e-4
"""With ``check_range=True`` extra negatives must lie in ``[-1 - tol, 1 + tol]`` (cosines)."""


def extra_negative_lse(scaled: Tensor, mask: Tensor | None = None) -> Tensor:
    """``E = log Σ_{t: mask} exp(scaled_t)``, a 0-D tensor; ``-inf`` when nothing is kept.

    Written so that every gradient stays finite when the mask keeps nothing (a plain
    ``logsumexp`` of all ``-inf`` has a NaN gradient) and masked-out values never enter an
    ``exp`` that could overflow.

    Args:
        scaled: ``(M,)`` scaled extra negatives ``s·t``.
        mask: ``(M,)`` bool, the negatives that count (None: all).
    """
    if scaled.numel() == 0:
        return scaled.new_full((), -math.inf)
    neg_inf = torch.tensor(-math.inf, dtype=scaled.dtype, device=scaled.device)
    u = scaled if mask is None else torch.where(mask, scaled, neg_inf)
    top = u.detach().max()
    some = torch.isfinite(top)
    shift = torch.where(some, top, torch.zeros_like(top))
    total = torch.exp(u - shift).sum()
    lse = shift + torch.log(torch.where(some, total, torch.ones_like(total)))
    return torch.where(some, lse, neg_inf)


def unpg_cross_entropy(
    margin_logits: Tensor,
    labels: Tensor,
    extra_negatives: Tensor | None = None,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    materialize: bool = False,
    *,
    mask: Tensor | None = None,
    check_range: bool = False,
    validate: bool = True,
) -> Tensor:
    r"""Cross-entropy of ``s·margin_logits`` with shared extra negatives in every denominator.

    ``L_i = -s ψ_i + log(Σ_j e^{s·margin_logits_ij} + Σ_t e^{s t})`` with ``ψ_i =
    margin_logits[i, y_i]`` (the head already put the margin there) and ``t`` over the kept
    ``extra_negatives``. With no extra negatives it is ``F.cross_entropy(s·margin_logits, y)``.

    Args:
        margin_logits: ``(B, C)`` margin-adjusted cosines (unscaled), e.g. from
            :class:`paperzoo.unpg.ArcFaceHead`.
        labels: ``(B,)`` integer targets in ``[0, C)``.
        extra_negatives: ``(M,)`` similarities appended to every row's denominator (the UNPG
            negatives ``F(S_n^ML)``), or None / empty.
        scale: ``s > 0``; 64 (official).
        reduction: ``"mean"`` (official), ``"sum"`` or ``"none"`` (``(B,)``).
        materialize: build the official ``(B, C + M')`` logit matrix (``M'`` kept negatives) and
            call ``F.cross_entropy`` on it: the same value, ``O(B M)`` memory; for parity tests.
        mask: ``(M,)`` bool, which extra negatives count (None: all). Lets a caller filter
            without compacting the tensor (a data-dependent shape costs a host sync).
        check_range: require ``extra_negatives`` in ``[-1 - 1e-4, 1 + 1e-4]`` (they must be
            cosines; one host sync).
        validate: check finiteness and the label range (host syncs).

    Returns:
        A scalar, or ``(B,)`` with ``reduction="none"``; float32 for half-precision inputs (the
        log-sum-exp runs in fp32), else the input dtype.

    Raises:
        TypeError/ValueError: ``margin_logits`` not a non-empty 2-D float tensor; labels not 1-D
            integer, of length ``!= B`` or outside ``[0, C)``; ``extra_negatives`` not 1-D float,
            NaN/inf or (``check_range``) outside the cosine range; ``mask`` not a bool ``(M,)``;
            ``scale <= 0``; an unknown reduction.
    """
    red = check_reduction(reduction)
    s = check_positive("scale", scale)
    check_float_tensor("margin_logits", margin_logits, ndim=2)
    check_nonempty("margin_logits", margin_logits)
    check_labels(
        "labels",
        labels,
        n=margin_logits.shape[0],
        num_classes=margin_logits.shape[1],
        like=margin_logits,
        validate=validate,
    )
    check_finite("margin_logits", margin_logits, validate=validate)
    if extra_negatives is None:
        extra_negatives = margin_logits.new_zeros(0)
    check_float_tensor("extra_negatives", extra_negatives, ndim=1)
    if extra_negatives.device != margin_logits.device:
        raise ValueError(
            f"extra_negatives: expected device {margin_logits.device}, got {extra_negatives.device}"
        )
    check_finite("extra_negatives", extra_negatives, validate=validate)
    if check_range and extra_negatives.numel() > 0:
        lo, hi = float(extra_negatives.min()), float(extra_negatives.max())
        if lo < -1 - COSINE_TOLERANCE or hi > 1 + COSINE_TOLERANCE:
            raise ValueError(
                "extra_negatives: expected cosine similarities in [-1 - 1e-4, 1 + 1e-4], got "
                f"range [{lo:.6g}, {hi:.6g}]"
            )
    if mask is not None and (
        not isinstance(mask, Tensor)
        or mask.dtype != torch.bool
        or mask.shape != extra_negatives.shape
    ):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask)
        raise ValueError(
            f"mask: expected a bool tensor of shape {tuple(extra_negatives.shape)}, got {got}"
        )
    dtype = torch.promote_types(
        torch.promote_types(margin_logits.dtype, extra_negatives.dtype), torch.float32
    )
    z = s * margin_logits.to(dtype)
    t = s * extra_negatives.to(dtype)
    if materialize:
        kept = t if mask is None else t[mask]
        logits = torch.cat([z, kept.unsqueeze(0).expand(z.shape[0], -1)], dim=1)
        return F.cross_entropy(logits, labels, reduction=red)
    target = z.gather(1, labels.view(-1, 1)).squeeze(1)
    total = torch.logaddexp(torch.logsumexp(z, dim=1), extra_negative_lse(t, mask))
    return reduce(total - target, red)
