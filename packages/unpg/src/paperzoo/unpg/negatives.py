r"""MLPG negatives: the in-batch sample–sample negative similarities and the box-and-whisker filter.

``S_n^ML = {<x̂_i, x̂_j> : i < j, y_i != y_j}`` (each unordered different-label pair once, the
official ``convert_label_to_similarity``), filtered by the box-and-whisker rule (official
``box_and_whisker_algorithm``): sort the ``M`` values ascending, ``Q1 = v[floor(M/4)]``,
``Q3 = v[floor(3M/4)]``, keep ``t`` with ``Q1 - k·IQR <= t <= Q3 + k·IQR``.

The loss uses the private mask forms (:func:`negative_pair_similarities`, :func:`whisker_mask`):
every upper-triangle pair with a validity mask, so no tensor has a data-dependent length and
nothing synchronises with the host. The public :func:`in_batch_negative_similarities` and
:func:`box_whisker_filter` return the compacted values (one host sync, for logging and tests).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import (
    as_real,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
)

__all__ = [
    "Quantile",
    "box_whisker_filter",
    "check_whisker",
    "in_batch_negative_similarities",
    "negative_pair_similarities",
    "whisker_mask",
]

Quantile = Literal["index", "linear"]
"""Quartile rule: ``"index"`` = ``v[floor(q M)]`` of the sorted values (official), ``"linear"`` =
``torch.quantile``'s linear interpolation at ``q (M - 1)``."""

QUANTILES: tuple[Quantile, ...] = ("index", "linear")


def check_whisker(whisker: object) -> float:
    """``whisker`` (``k``) as a float ``>= 0``; ``inf`` (no filter) allowed.

    Raises:
        TypeError: not a real number. ValueError: negative or NaN.
    """
    k = as_real("whisker", whisker)
    if math.isnan(k) or k < 0:
        raise ValueError(f"whisker: expected a value >= 0 (inf allowed), got {whisker!r}")
    return k


def negative_pair_similarities(
    embeddings: Tensor, labels: Tensor, *, normalize: bool = True
) -> tuple[Tensor, Tensor]:
    """Similarities of every pair ``i < j`` (row-major upper triangle) and which pairs are negatives.

    No validation (the callers check). Half-precision embeddings are compared in float32.

    Args:
        embeddings: ``(B, D)``.
        labels: ``(B,)``.
        normalize: L2-normalise the rows first (cosine similarities).

    Returns:
        ``(sims, negative)``, both ``(B (B - 1) / 2,)``: ``sims[p] = <x̂_i, x̂_j>`` and
        ``negative[p] = y_i != y_j`` for the ``p``-th pair of ``torch.triu_indices(B, B, 1)``.
    """
    x = embeddings
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if normalize:
        x = F.normalize(x, dim=1)
    b = x.shape[0]
    i, j = torch.triu_indices(b, b, offset=1, device=x.device)
    gram = x @ x.t()
    return gram[i, j], labels[i] != labels[j]


def _quartiles(sorted_vals: Tensor, count: Tensor, quantile: Quantile) -> tuple[Tensor, Tensor]:
    """Q1, Q3 of the first ``count`` entries of ascending ``sorted_vals`` (``count`` a 0-D tensor)."""
    last = (count - 1).clamp_min(0)
    qs = []
    for q in (0.25, 0.75):
        if quantile == "index":
            k = torch.floor(count.to(torch.float64) * q).long().clamp(max=last)
            qs.append(sorted_vals[k])
        else:
            pos = last.to(torch.float64) * q
            lo = torch.floor(pos).long()
            hi = torch.ceil(pos).long()
            frac = (pos - lo.to(torch.float64)).to(sorted_vals.dtype)
            qs.append(sorted_vals[lo] + frac * (sorted_vals[hi] - sorted_vals[lo]))
    return qs[0], qs[1]


def whisker_mask(
    values: Tensor,
    valid: Tensor | None = None,
    *,
    whisker: float = 1.5,
    quantile: Quantile = "index",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The box-and-whisker keep mask over ``values`` (only the ``valid`` ones count), no host sync.

    Quartiles are taken over the ``M = valid.sum()`` valid values; when ``M < 4`` every valid value
    is kept (the official rule keeps them all there too); ``whisker = inf`` keeps every valid value.

    Args:
        values: ``(P,)`` similarities.
        valid: ``(P,)`` bool, or None (all valid).
        whisker: ``k >= 0``.
        quantile: ``"index"`` (official) or ``"linear"``.

    Returns:
        ``(keep, stats)``: ``keep`` ``(P,)`` bool (False wherever ``valid`` is); ``stats``: 0-D
        tensors ``M``, ``kept``, ``q1``, ``q3``, ``min``, ``max`` (NaN quartiles/extrema when
        ``M == 0``).
    """
    if valid is None:
        valid = torch.ones_like(values, dtype=torch.bool)
    vals = values.detach()
    if vals.dtype in (torch.float16, torch.bfloat16):
        vals = vals.float()
    count = valid.sum()
    if vals.numel() == 0:
        nan = vals.new_full((), math.nan)
        return valid.clone(), {
            "M": count,
            "kept": count,
            "q1": nan,
            "q3": nan,
            "min": nan,
            "max": nan,
        }
    inf = torch.tensor(math.inf, dtype=vals.dtype, device=vals.device)
    sorted_vals = torch.where(valid, vals, inf).sort().values  # invalid ones last
    q1, q3 = _quartiles(sorted_vals, count, quantile)
    if math.isinf(whisker):
        keep = valid.clone()
    else:
        iqr = q3 - q1
        inside = (vals >= q1 - whisker * iqr) & (vals <= q3 + whisker * iqr)
        keep = valid & (inside | (count < 4))
    some = count > 0
    nan = torch.full_like(q1, math.nan)
    stats = {
        "M": count,
        "kept": keep.sum(),
        "q1": torch.where(some, q1, nan),
        "q3": torch.where(some, q3, nan),
        "min": torch.where(some, sorted_vals[0], nan),
        "max": torch.where(some, sorted_vals[(count - 1).clamp_min(0)], nan),
    }
    return keep, stats


def in_batch_negative_similarities(
    embeddings: Tensor, labels: Tensor, normalize: bool = True, *, validate: bool = True
) -> Tensor:
    r"""``S_n^ML``: the cosine similarity of every unordered different-label pair of the batch.

    ``{<x̂_i, x̂_j> : i < j, y_i != y_j}`` in row-major upper-triangle order (as the official
    ``convert_label_to_similarity``).

    Args:
        embeddings: ``(B, D)`` features.
        labels: ``(B,)`` integer labels.
        normalize: L2-normalise the rows first (default; False for already normalised rows).
        validate: check finiteness (one host sync).

    Returns:
        ``(M,)`` with ``M`` the number of different-label pairs (0 for a one-class batch).

    Raises:
        TypeError/ValueError: embeddings not a 2-D float tensor or empty; labels not 1-D integer of
            length ``B``; NaN/inf.
    """
    check_float_tensor("embeddings", embeddings, ndim=2)
    check_nonempty("embeddings", embeddings)
    check_labels("labels", labels, n=embeddings.shape[0], like=embeddings, validate=False)
    check_finite("embeddings", embeddings, validate=validate)
    sims, negative = negative_pair_similarities(embeddings, labels, normalize=normalize)
    return sims[negative]


def box_whisker_filter(
    values: Tensor, whisker: float = 1.5, quantile: Quantile = "index"
) -> tuple[Tensor, Tensor]:
    r"""The box-and-whisker filter ``F``: keep ``Q1 - k·IQR <= t <= Q3 + k·IQR``.

    Args:
        values: ``(M,)`` similarities (any order).
        whisker: ``k >= 0``; 1.5 (official, MS1MV2); ``inf`` keeps everything, 0 keeps ``[Q1, Q3]``.
        quantile: ``"index"`` (official: ``v[floor(q M)]`` of the sorted values) or ``"linear"``.

    Returns:
        ``(kept, mask)``: ``kept = values[mask]`` ``(M',)`` in the input order, ``mask`` ``(M,)``
        bool. With ``M < 4`` everything is kept.

    Raises:
        TypeError/ValueError: not a 1-D float tensor; NaN/inf; bad ``whisker`` or ``quantile``.
    """
    check_float_tensor("values", values, ndim=1)
    check_finite("values", values)
    k = check_whisker(whisker)
    check_choice("quantile", quantile, QUANTILES)
    mask, _ = whisker_mask(values, whisker=k, quantile=quantile)
    return values[mask], mask
