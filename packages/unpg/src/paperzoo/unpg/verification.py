"""Face-verification metrics: pair scores, TAR at fixed FAR, EER, and the WDFS proxy.

A verification protocol scores pairs ``(a, b)`` (cosine of the embeddings) and labels them
genuine (same identity) or impostor. TAR@FAR ``f``: the threshold ``τ`` lets at most
``floor(f · N_imp)`` impostor scores strictly above it; TAR is the share of genuine scores above
``τ``. At ``f = 0`` the threshold is the largest impostor score, so TAR@0 is the share of genuine
pairs above every impostor: the paper's "well-discriminative feature space" criterion measured on
a test set (:func:`wdfs_fraction`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_finite, check_float_tensor, check_nonempty

__all__ = ["eer", "tar_at_far", "verification_scores", "wdfs_fraction"]


def verification_scores(emb_a: Tensor, emb_b: Tensor) -> Tensor:
    """Cosine similarity of each pair of rows: ``(N, D), (N, D) -> (N,)``.

    Raises:
        TypeError/ValueError: not 2-D float tensors of the same shape, empty, NaN/inf.
    """
    check_float_tensor("emb_a", emb_a, ndim=2, nonempty=True)
    check_float_tensor("emb_b", emb_b, ndim=2, nonempty=True)
    if emb_a.shape != emb_b.shape:
        raise ValueError(
            f"emb_a, emb_b: expected the same shape, got {tuple(emb_a.shape)} and "
            f"{tuple(emb_b.shape)}"
        )
    check_finite("emb_a", emb_a)
    check_finite("emb_b", emb_b)
    return (F.normalize(emb_a, dim=1) * F.normalize(emb_b, dim=1)).sum(1)


def _split(scores: Tensor, issame: Tensor) -> tuple[Tensor, Tensor]:
    check_float_tensor("scores", scores, ndim=1)
    check_nonempty("scores", scores)
    if not isinstance(issame, Tensor) or issame.dtype != torch.bool:
        raise TypeError(f"issame: expected a bool tensor, got {getattr(issame, 'dtype', issame)}")
    if issame.shape != scores.shape:
        raise ValueError(
            f"issame: expected shape {tuple(scores.shape)} (one per score), got "
            f"{tuple(issame.shape)}"
        )
    check_finite("scores", scores)
    gen, imp = scores[issame], scores[~issame]
    if gen.numel() == 0 or imp.numel() == 0:
        raise ValueError(
            f"issame: expected genuine and impostor pairs, got {gen.numel()} genuine and "
            f"{imp.numel()} impostor"
        )
    return gen, imp


def tar_at_far(
    scores: Tensor, issame: Tensor, far: Sequence[float] = (1e-4, 1e-3, 1e-2)
) -> dict[float, float]:
    """True-accept rate at each false-accept rate.

    Args:
        scores: ``(N,)`` pair similarities.
        issame: ``(N,)`` bool, True for genuine pairs.
        far: FARs in ``[0, 1)``; below ``1 / N_imp`` the threshold is the largest impostor score.

    Returns:
        ``{far: tar}`` with ``tar`` in ``[0, 1]``.

    Raises:
        TypeError/ValueError: shapes, dtypes, NaN/inf, no genuine or no impostor pair, a FAR
            outside ``[0, 1)``.
    """
    gen, imp = _split(scores, issame)
    imp_desc = imp.sort(descending=True).values
    out: dict[float, float] = {}
    for f in far:
        if not 0.0 <= f < 1.0:
            raise ValueError(f"far: expected values in [0, 1), got {f!r}")
        k = int(f * imp.numel())  # impostors allowed strictly above the threshold
        thr = imp_desc[min(k, imp.numel() - 1)]
        out[float(f)] = float((gen > thr).double().mean())
    return out


def wdfs_fraction(scores: Tensor, issame: Tensor) -> float:
    """Share of genuine pairs scored above the largest impostor score (TAR at FAR 0)."""
    return tar_at_far(scores, issame, far=(0.0,))[0.0]


def eer(scores: Tensor, issame: Tensor) -> float:
    """Equal error rate: where FAR (impostors ``>= τ``) meets FRR (genuine ``< τ``).

    Evaluated at every observed score as threshold; returns the mean of FAR and FRR where their
    difference is smallest.
    """
    gen, imp = _split(scores, issame)
    thr = torch.cat([gen, imp]).unique()  # ascending
    far = 1.0 - torch.searchsorted(imp.sort().values, thr, right=False).double() / imp.numel()
    frr = torch.searchsorted(gen.sort().values, thr, right=False).double() / gen.numel()
    i = int((far - frr).abs().argmin())
    return float((far[i] + frr[i]) / 2)
