r"""Action-selection rules and losses of the regression-oracle reductions (functional form).

Selection rules map predicted *losses* ``yhat[..., K]`` (lower is better) to a distribution over the
``K`` arms. With :math:`b = \arg\min_a \hat y_a` (lowest index on ties) and the gap
:math:`\Delta_a = \hat y_a - \hat y_b \ge 0`:

* inverse-gap weighting (SquareCB, Foster & Rakhlin 2020):
  :math:`p_a = 1 / (K + \gamma \Delta_a)` for :math:`a \ne b`, :math:`p_b = 1 - \sum_{a \ne b} p_a`;
* the first-order rule (FastCB, Foster & Krishnamurthy 2021):
  :math:`p_a = \hat y_b / (K \hat y_b + \gamma \Delta_a)` for :math:`a \ne b`, :math:`p_b` the rest.

Losses used by the online regression oracle (the module twins live in :mod:`paperzoo.neucb.losses`):

* squared loss :math:`\tfrac12 (f - y)^2`;
* binary KL loss :math:`y \log(y/\hat y) + (1-y)\log((1-y)/(1-\hat y))` with
  :math:`\hat y = \sigma(\text{logit})`, computed as BCE-with-logits minus the binary entropy
  :math:`H(y)`, so it is finite for any logit and exactly 0 at :math:`\hat y = y`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import Reduction, check_reduction, reduce

__all__ = [
    "check_distribution",
    "fastcb_probs",
    "igw_probs",
    "kl_loss",
    "squared_loss",
]


def _check_gamma(gamma: float | Tensor) -> None:
    if isinstance(gamma, Tensor):
        if gamma.numel() != 1:
            raise ValueError(f"gamma must be a scalar, got a tensor of shape {tuple(gamma.shape)}")
        # one host sync; the selection rules are called once per round, not in an inner loop
        value = float(gamma)
    else:
        value = float(gamma)
    if math.isnan(value) or value < 0:
        raise ValueError(f"gamma must be >= 0, got {value}")


def _check_pred(pred_loss: Tensor, name: str = "pred_loss") -> None:
    if not isinstance(pred_loss, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pred_loss).__name__}")
    if not pred_loss.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {pred_loss.dtype}")
    if pred_loss.dim() < 1 or pred_loss.shape[-1] < 2:
        raise ValueError(
            f"{name} must have shape (..., K) with K >= 2 arms, got {tuple(pred_loss.shape)}"
        )
    if not bool(torch.isfinite(pred_loss).all()):
        raise ValueError(f"{name} contains NaN or inf")


def _gap_and_best(pred_loss: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (best index (..., 1), best value (..., 1), gap (..., K) >= 0)."""
    best_idx = pred_loss.argmin(dim=-1, keepdim=True)  # first minimiser on ties
    best = pred_loss.gather(-1, best_idx)
    return best_idx, best, pred_loss - best


def _scaled_gap(gap: Tensor, gamma: float | Tensor) -> Tensor:
    # gamma * gap with 0 * inf := 0 so that gamma = inf gives the greedy limit without NaNs.
    return torch.where(gap > 0, gap * gamma, 0.0)


def _fill_best(probs: Tensor, best_idx: Tensor) -> Tensor:
    # in place: ``probs`` is a fresh tensor of the caller's
    probs = probs.scatter_(-1, best_idx, 0.0)
    remainder = 1.0 - probs.sum(dim=-1, keepdim=True)
    return probs.scatter_(-1, best_idx, remainder)


def igw_probs(pred_loss: Tensor, gamma: float | Tensor, *, validate: bool = True) -> Tensor:
    r"""Inverse-gap-weighting distribution of SquareCB.

    Args:
        pred_loss: predicted losses ``(..., K)``, lower is better, ``K >= 2``.
        gamma: the greediness :math:`\gamma \ge 0` (``0`` gives uniform, ``inf`` greedy).
        validate: check shapes and values (turn off in a hot loop you already validated).

    Returns:
        ``(..., K)`` probabilities; the lowest-index argmin arm ``b`` takes the remainder. A tied
        non-argmin arm gets ``1/K`` (the rule is asymmetric on ties, as in Vowpal Wabbit's
        ``cb_explore_adf_squarecb``, which was checked for this convention).
    """
    if validate:
        _check_pred(pred_loss)
        _check_gamma(gamma)
    n_arms = pred_loss.shape[-1]
    best_idx, _, gap = _gap_and_best(pred_loss)
    probs = 1.0 / (n_arms + _scaled_gap(gap, gamma))
    return _fill_best(probs, best_idx)


def fastcb_probs(pred_loss: Tensor, gamma: float | Tensor, *, validate: bool = True) -> Tensor:
    r"""First-order (FastCB) action distribution.

    :math:`p_a = \hat y_b / (K \hat y_b + \gamma \Delta_a)` for :math:`a \ne b`, :math:`p_b` the rest.
    Where the ratio is ``0/0`` (``yhat_b = 0`` and ``gamma * Delta_a = 0``) it is set to its continuous
    limit ``1/K``; ``yhat_b = 0`` with ``Delta_a > 0`` and ``gamma > 0`` gives ``p_a = 0`` (greedy by
    design: the best arm is predicted to be loss-free).

    Args:
        pred_loss: predicted losses ``(..., K)`` in ``[0, inf)`` (the paper's sigmoid outputs lie
            in ``[0, 1]``); negative values raise.
        gamma: the greediness :math:`\gamma \ge 0`.
        validate: check shapes and values.

    Returns:
        ``(..., K)`` probabilities. The rule is scale invariant (all ``yhat`` times ``c > 0``) but,
        unlike inverse-gap weighting, not shift invariant.
    """
    if validate:
        _check_pred(pred_loss)
        _check_gamma(gamma)
        if bool((pred_loss < 0).any()):
            raise ValueError("pred_loss must be >= 0 for the FastCB rule (predicted losses)")
    n_arms = pred_loss.shape[-1]
    best_idx, best, gap = _gap_and_best(pred_loss)
    denom = n_arms * best + _scaled_gap(gap, gamma)
    safe = torch.where(denom > 0, denom, torch.ones_like(denom))
    probs = torch.where(denom > 0, best / safe, torch.full_like(denom, 1.0 / n_arms))
    return _fill_best(probs, best_idx)


def check_distribution(probs: Tensor, *, atol: float = 1e-5, name: str = "probs") -> None:
    """Raise ``ValueError`` unless ``probs (..., K)`` is non-negative, finite and sums to one."""
    if not isinstance(probs, Tensor) or not probs.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor")
    if probs.dim() < 1 or probs.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K), got {tuple(probs.shape)}")
    if not bool(torch.isfinite(probs).all()):
        raise ValueError(f"{name} is not a distribution: it contains NaN or inf")
    if bool((probs < -atol).any()):
        raise ValueError(f"{name} is not a distribution: negative entries {probs.min().item():.3g}")
    total = probs.sum(dim=-1)
    if bool(((total - 1.0).abs() > atol).any()):
        raise ValueError(
            f"{name} is not a distribution: sums to {total.flatten()[:4].tolist()} instead of 1"
        )


def _check_loss_inputs(pred: Tensor, target: Tensor, pred_name: str) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{pred_name} and target must be torch.Tensors")
    if not pred.is_floating_point():
        raise TypeError(f"{pred_name} must be a floating-point tensor, got dtype {pred.dtype}")
    if not target.is_floating_point():
        raise TypeError(f"target must be a floating-point tensor, got dtype {target.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"{pred_name} and target must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if pred.numel() == 0:
        raise ValueError(f"{pred_name} is empty (shape {tuple(pred.shape)}); need at least one")
    if not bool(torch.isfinite(pred).all()):
        raise ValueError(f"{pred_name} contains NaN or inf")
    if not bool(torch.isfinite(target).all()):
        raise ValueError("target contains NaN or inf")


def squared_loss(
    pred: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    r"""Squared loss :math:`\tfrac12 (f - y)^2` of the NeuSquareCB oracle.

    Args:
        pred: predictions ``(N,)`` (any shape), e.g. the perturbed network output.
        target: observed losses of the same shape.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-element, same shape).

    Deviation: the factor 1/2 is kept so that the gradient is ``(f - y) * grad f``; the paper's
    analysis may omit it, which only rescales the learning rate.
    """
    check_reduction(reduction)
    if validate:
        _check_loss_inputs(pred, target, "pred")
    return reduce(0.5 * (pred - target).square(), reduction)


def kl_loss(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True
) -> Tensor:
    r"""Binary KL loss :math:`\mathrm{KL}(y \,\|\, \sigma(\text{logits}))` of the NeuFastCB oracle.

    Computed as ``binary_cross_entropy_with_logits(logits, y) - H(y)`` with the binary entropy
    :math:`H(y) = -y\log y - (1-y)\log(1-y)` (``0 log 0 = 0``): the same gradient in the logits as
    BCE, non-negative, exactly 0 at ``sigmoid(logits) = y`` and finite for any finite logit.

    Args:
        logits: ``(N,)`` (any shape) real logits; ``sigmoid(logits)`` is the predicted loss.
        target: observed losses in ``[0, 1]`` of the same shape.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
    """
    check_reduction(reduction)
    if validate:
        _check_loss_inputs(logits, target, "logits")
        if bool(((target < 0) | (target > 1)).any()):
            raise ValueError(
                "target must lie in [0, 1] for the KL loss, got values in "
                f"[{target.min().item():.4g}, {target.max().item():.4g}]"
            )
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    entropy = -(torch.xlogy(target, target) + torch.xlogy(1.0 - target, 1.0 - target))
    return reduce(bce - entropy, reduction)
