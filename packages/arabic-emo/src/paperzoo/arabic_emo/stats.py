"""Statistics of a training label matrix that the hybrid loss is built from: class weights and the
label correlation matrix (spec section 3, step 5).

Both take the ``(N, K)`` 0/1 label matrix of the *training* split, once, before training.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.checks import check_choice, check_finite, check_positive

__all__ = [
    "WeightMode",
    "check_binary_labels",
    "check_correlation_matrix",
    "class_weights",
    "label_correlation",
]

WeightMode = Literal["balanced", "pos_weight"]
"""How :func:`class_weights` turns label counts into weights."""


def check_binary_labels(
    name: str, labels: object, *, k: int | None = None, n: int | None = None, validate: bool = True
) -> Tensor:
    """``labels`` if it is a 2-D ``(N, K)`` tensor whose values are all 0 or 1 (any real dtype).

    The value check costs one host sync and runs only when ``validate``.

    Raises:
        TypeError: not a tensor, or a complex tensor.
        ValueError: not 2-D, wrong ``N``/``K``, or a value other than 0/1.
    """
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of 0/1 labels, got {type(labels).__name__}"
        )
    if labels.is_complex():
        raise TypeError(f"{name}: expected a real 0/1 tensor, got dtype {labels.dtype}")
    if labels.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D (N, K) tensor, got shape {tuple(labels.shape)}")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows, got shape {tuple(labels.shape)}")
    if k is not None and labels.shape[1] != k:
        raise ValueError(f"{name}: expected {k} label columns, got shape {tuple(labels.shape)}")
    if validate and labels.numel() > 0 and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{name}: expected values in {{0, 1}}, got other values")
    return labels


def class_weights(
    labels: Tensor, mode: WeightMode = "balanced", *, min_count: float | None = None
) -> Tensor:
    r"""Per-label weights from the positive counts ``n_k`` of a training label matrix.

    ``"balanced"``: :math:`w_k = \sum_j n_j / (K n_k)` (the positives' mean weight is 1; used as
    ``weight`` of :func:`~paperzoo.arabic_emo.losses.weighted_bce_loss`, it scales the positive
    *and* the negative terms of label k, so each label's optimal probability is unchanged).
    ``"pos_weight"``: :math:`w_k = (N - n_k) / n_k` (the ``pos_weight`` convention of
    ``BCEWithLogitsLoss``: it scales the positive terms only, which raises rare labels' recall).

    Args:
        labels: ``(N, K)`` 0/1 training labels (any real dtype).
        mode: ``"balanced"`` (default) or ``"pos_weight"``.
        min_count: with it, a label's count is ``max(n_k, min_count)``, so a label with no
            positives gets a finite weight; without it such a label is an error.

    Returns:
        ``(K,)`` float weights (float64 for float64 labels, float32 otherwise).

    Raises:
        ValueError: not a 0/1 ``(N, K)`` matrix, no rows, a label with zero positives (without
            ``min_count``), an unknown ``mode``, ``min_count <= 0``.
    """
    check_choice("mode", mode, ("balanced", "pos_weight"))
    check_binary_labels("labels", labels)
    if labels.shape[0] == 0:
        raise ValueError(f"labels: expected at least one row, got shape {tuple(labels.shape)}")
    dtype = labels.dtype if labels.dtype == torch.float64 else torch.float32
    counts = labels.to(dtype).sum(dim=0)
    if min_count is not None:
        counts = counts.clamp_min(check_positive("min_count", min_count))
    elif bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"labels: expected at least one positive per label column, got none in columns "
            f"{empty} (pass min_count to give such labels a finite weight)"
        )
    if mode == "balanced":
        return counts.sum() / (labels.shape[1] * counts)
    return (labels.shape[0] - counts) / counts


def label_correlation(labels: Tensor, *, clip_negative: bool = True) -> Tensor:
    r"""The ``(K, K)`` label correlation matrix ``C`` of a training label matrix.

    :math:`C_{jk}` is the Pearson (phi) correlation of label columns j and k (as
    ``numpy.corrcoef``), with the diagonal set to 0 and, with ``clip_negative``, negative entries
    set to 0. A constant column (a label never or always on) has correlation 0 with every label.

    Args:
        labels: ``(N, K)`` 0/1 training labels (any real dtype), ``N >= 1``.
        clip_negative: set negative correlations to 0 (default True).

    Returns:
        Symmetric ``(K, K)`` float tensor (float64 for float64 labels, float32 otherwise).

    Raises:
        ValueError: not a 0/1 ``(N, K)`` matrix or no rows.
    """
    check_binary_labels("labels", labels)
    if labels.shape[0] == 0:
        raise ValueError(f"labels: expected at least one row, got shape {tuple(labels.shape)}")
    dtype = labels.dtype if labels.dtype == torch.float64 else torch.float32
    y = labels.to(torch.float64)
    centred = y - y.mean(dim=0, keepdim=True)
    cov = centred.T @ centred
    std = cov.diagonal().sqrt()
    denom = std[:, None] * std[None, :]
    corr = torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.zeros_like(cov))
    corr = corr.clamp(-1.0, 1.0)
    corr.fill_diagonal_(0.0)
    if clip_negative:
        corr = corr.clamp_min(0.0)
    return corr.to(dtype)


def check_correlation_matrix(name: str, c: object, k: int, *, validate: bool = True) -> Tensor:
    """``c`` if it is a finite, square, symmetric ``(k, k)`` floating tensor.

    Raises:
        TypeError: not a floating tensor. ValueError: wrong shape, not symmetric, NaN/inf.
    """
    if not isinstance(c, Tensor) or not c.is_floating_point():
        got = c.dtype if isinstance(c, Tensor) else type(c).__name__
        raise TypeError(f"{name}: expected a floating-point (K, K) tensor, got {got}")
    if c.dim() != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"{name}: expected a square (K, K) matrix, got shape {tuple(c.shape)}")
    if c.shape[0] != k:
        raise ValueError(
            f"{name}: expected a ({k}, {k}) matrix for {k} labels, got shape {tuple(c.shape)}"
        )
    if validate:
        check_finite(name, c)
        if not torch.allclose(c, c.T, rtol=1e-5, atol=1e-7):
            raise ValueError(f"{name}: expected a symmetric matrix, got C != C.T")
    return c
