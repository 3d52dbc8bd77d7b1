r"""HPM's loss-prediction objectives: the relative (pairwise ranking) loss and the absolute ablation.

Both compare the loss predictor's per-patch scores ``s`` with the realised, *detached*
per-patch reconstruction losses ``l`` of the same image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_nonempty,
    check_reduction,
    reduce,
)

__all__ = [
    "AbsoluteLossPredictionLoss",
    "RelativeLossPredictionLoss",
    "absolute_loss_prediction_loss",
    "relative_loss_prediction_loss",
]


def _check_pair(pred: Tensor, target: Tensor, validate: bool) -> None:
    check_float_tensor("pred", pred, 2)
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a torch.Tensor, got {type(target).__name__}")
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target: expected real per-patch losses, got dtype {target.dtype}")
    if target.shape != pred.shape:
        raise ValueError(
            f"pred, target: expected the same shape (N, M), got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if target.device != pred.device:
        raise ValueError(f"target: expected it on pred's device {pred.device}, got {target.device}")
    check_nonempty("pred", pred)
    if validate:
        check_finite("pred", pred)
        check_finite("target", target)


def _relative_pair_losses(
    pred: Tensor, target: Tensor, valid: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The ``(N, M, M)`` pair-loss matrix (0 on invalid pairs) and the pair weights (0/1).

    Entry ``[n, i, j]`` has logit ``x = s_j - s_i`` and label ``1[l_j > l_i]`` (the reference's
    orientation). With ``sgn = sign(l_j - l_i)``, ``BCEWithLogits(x, 1) = softplus(-x)`` and
    ``BCEWithLogits(x, 0) = softplus(x)``, so the pair loss is ``softplus(-sgn * x)`` and
    ``|sgn|`` marks the valid pairs (ties and ``i == j`` give 0): few temporaries, stable.
    """
    t = target.detach()  # the sign of a difference is exact in the target's own dtype
    sgn = torch.sign(t.unsqueeze(1) - t.unsqueeze(2)).to(pred.dtype)
    if valid is not None:
        sgn = sgn * (valid.unsqueeze(1) & valid.unsqueeze(2)).to(sgn.dtype)
    logits = pred.unsqueeze(1) - pred.unsqueeze(2)
    weight = sgn.abs()
    return F.softplus(-sgn * logits) * weight, weight


def relative_loss_prediction_loss(
    pred: Tensor,
    target: Tensor,
    valid: Tensor | None = None,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""HPM's relative (pairwise ranking) loss-prediction objective (paper Eq. 6, default).

    For each image and every ordered pair ``(i, j)``, ``i != j``, of its patches with
    ``l_i != l_j``:

    .. math::  \ell_{ij} = \mathrm{BCEWithLogits}(s_j - s_i,\; \mathbb{1}[l_j > l_i])

    Pairs with tied targets (and ``i == j``) are ignored; both orientations of each untied pair
    count. ``mean`` divides the sum over all images and valid ordered pairs by their number (the
    reference's global normalisation over the batch). Only the *order* of ``target`` matters, so
    the loss is invariant to any strictly increasing map of ``target`` and to adding a constant
    to a row of ``pred``.

    Deviation: the reference computes ``-log(sigmoid(x) + 1e-6)``; we use the exact, stable
    ``softplus`` form (equal within 1e-5 for moderate logits). A batch with no valid pair (all
    ties, or fewer than two patches per image) gives 0 with a graph, where the reference gives
    0/0 = NaN.

    Args:
        pred: ``(N, M)`` predicted losses (logit scale), usually of the masked patches.
        target: ``(N, M)`` realised per-patch losses; detached here.
        valid: optional ``(N, M)`` bool, False for patches to leave out of every pair.
        reduction: ``"mean"`` (default), ``"sum"``, or ``"none"`` for the ``(N, M, M)`` pair
            matrix (entry ``[n, i, j]`` the loss of pair ``(i, j)``, 0 where invalid).
        validate: check finiteness (one host sync); turn off in hot loops.

    Returns:
        A scalar, or ``(N, M, M)`` with ``reduction="none"``.

    Raises:
        ValueError: shape mismatch, empty batch, NaN/inf, unknown reduction.
        TypeError: non-floating ``pred``; non-bool ``valid``.
    """
    red = check_reduction(reduction)
    _check_pair(pred, target, validate)
    if valid is not None:
        if not isinstance(valid, Tensor) or valid.dtype != torch.bool:
            raise TypeError("valid: expected a bool tensor")
        if valid.shape != pred.shape:
            raise ValueError(f"valid: expected shape {tuple(pred.shape)}, got {tuple(valid.shape)}")
        if valid.device != pred.device:
            raise ValueError(
                f"valid: expected it on pred's device {pred.device}, got {valid.device}"
            )
    pair_loss, pair_valid = _relative_pair_losses(pred, target, valid)
    if red == "none":
        return pair_loss
    total = pair_loss.sum()
    if red == "sum":
        return total
    count = pair_valid.sum()
    return total / count.clamp_min(1)


def absolute_loss_prediction_loss(
    pred: Tensor,
    target: Tensor,
    reduction: Reduction = "mean",
    eps: float = 1e-6,
    *,
    validate: bool = True,
) -> Tensor:
    r"""HPM's absolute loss-prediction objective (the paper's ablation, ``relative=False``).

    The target is standardised per image, ``\hat l = (l - mean(l)) / sqrt(var_unbiased(l) + eps)``
    (detached), and the prediction regresses it with squared error.

    Args:
        pred: ``(N, M)`` predicted losses; ``M >= 2`` (the unbiased variance needs two patches).
        target: ``(N, M)`` realised per-patch losses; detached here.
        reduction: ``"mean"`` (default, as the reference), ``"sum"`` or ``"none"`` (``(N, M)``).
        eps: variance epsilon, ``1e-6`` as in the reference.
        validate: check finiteness (one host sync).

    Returns:
        A scalar, or ``(N, M)`` with ``reduction="none"``.

    Raises:
        ValueError: shape mismatch, ``M < 2``, empty batch, NaN/inf, unknown reduction.
    """
    red = check_reduction(reduction)
    _check_pair(pred, target, validate)
    if pred.shape[1] < 2:
        raise ValueError(
            f"pred: expected at least 2 patches per row, got shape {tuple(pred.shape)}"
        )
    t = target.detach().to(pred.dtype)
    t = (t - t.mean(dim=1, keepdim=True)) / torch.sqrt(t.var(dim=1, keepdim=True) + eps)
    return reduce((pred - t).pow(2), red)


class RelativeLossPredictionLoss(nn.Module):
    """Module twin of :func:`relative_loss_prediction_loss` (same arguments and defaults)."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
        """``pred``, ``target``: ``(N, M)``; ``valid``: optional ``(N, M)`` bool."""
        return relative_loss_prediction_loss(
            pred, target, valid, self.reduction, validate=self.validate
        )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class AbsoluteLossPredictionLoss(nn.Module):
    """Module twin of :func:`absolute_loss_prediction_loss` (same arguments and defaults)."""

    def __init__(
        self, reduction: Reduction = "mean", eps: float = 1e-6, *, validate: bool = True
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.eps = eps
        self.validate = validate

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """``pred``, ``target``: ``(N, M)``."""
        return absolute_loss_prediction_loss(
            pred, target, self.reduction, self.eps, validate=self.validate
        )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, eps={self.eps}"
