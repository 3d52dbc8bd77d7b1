r"""The Hyp-OC losses: Hyp-PC (hyperbolic pairwise confusion) and Hyp-CE (cross-entropy on the
hyperbolic MLR logits, bona fide = 0 vs pseudo-negative = 1)."""

from __future__ import annotations

import math
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_reduction,
    reduce,
)
from paperzoo.hyp_oc.ops import _mobius_add, _mobius_eps, artanh, check_curvature

__all__ = [
    "HypCELoss",
    "HypPCLoss",
    "PCDistance",
    "Pairing",
    "hyp_ce_loss",
    "hyp_pc_loss",
]

PCDistance = Literal["artanh", "official_atan", "euclidean"]
Pairing = Literal["halves", "adjacent"]


def _pc_terms(
    z: Tensor,
    c: float,
    pairing: Pairing,
    distance: PCDistance,
    drop_last: bool,
    mobius_eps: float,
    validate: bool,
) -> Tensor:
    """Per-example terms ``(B,)``: each member of a pair carries half of the pair's distance."""
    check_float_tensor("z", z, 2, nonempty=True)
    check_finite("z", z, validate=validate)
    b = z.shape[0]
    if b % 2 == 1:
        if not drop_last:
            raise ValueError(
                f"z: Hyp-PC pairs the batch, expected an even batch size, got {b} "
                "(pass drop_last=True to drop the last point)"
            )
        z = z[:-1]
        b -= 1
    if b < 2:
        raise ValueError(f"z: Hyp-PC needs at least 2 points, got {b}")
    if pairing == "halves":
        left, right = z[: b // 2], z[b // 2 :]
    else:
        left, right = z[0::2], z[1::2]
    if distance == "euclidean":
        d = (left - right).norm(dim=-1)
    else:
        sc = math.sqrt(c)
        if validate and bool((c * z.detach().pow(2).sum(-1) >= 1).any()):
            raise ValueError(
                f"z: expected points inside the Poincaré ball of radius {1 / sc:.6g} (c={c})"
            )
        m = _mobius_add(-left, right, c, mobius_eps).norm(dim=-1)
        d = 2.0 / sc * (artanh(sc * m) if distance == "artanh" else (sc * m).atan())
    half: Tensor = d / 2
    out: Tensor = half.repeat(2) if pairing == "halves" else half.repeat_interleave(2)
    return out


def hyp_pc_loss(
    z: Tensor,
    c: float = 0.1,
    *,
    pairing: Pairing = "halves",
    distance: PCDistance = "artanh",
    drop_last: bool = False,
    mobius_eps: float = 0.0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    r"""Hyp-PC: hyperbolic pairwise confusion between bona-fide ball points.

    .. math:: L_{PC} = \frac{1}{B}\sum_{i < B/2} d_c(z_i, z_{i + B/2})

    (half the mean pair distance; official ``TPC_loss_hyp``). It pulls pairs of real samples
    together, washing out identity-specific features.

    Args:
        z: ``(B, d)`` ball points of the real samples, ``B`` even (``>= 2``).
        c: curvature magnitude ``> 0`` (official ``0.1``).
        pairing: ``"halves"`` (official: ``z_i`` with ``z_{i+B/2}``) or ``"adjacent"``
            (``z_{2i}`` with ``z_{2i+1}``).
        distance: ``"artanh"`` (the Poincaré distance, the paper), ``"official_atan"``
            (``(2/√c) atan(√c‖(-x)⊕y‖)``, as the official code computes it) or ``"euclidean"``
            (``‖x - y‖``, for the Euclidean twin; ``c`` is then unused).
        drop_last: drop the last point of an odd batch instead of raising.
        mobius_eps: see :func:`paperzoo.hyp_oc.ops.mobius_add`.
        reduction: ``"mean"`` gives :math:`L_{PC}`; ``"none"`` gives ``(B',)`` per-example terms
            (each member of a pair carries half its distance; ``B'`` = ``B`` rounded down to
            even); ``"sum"`` the sum of the pair distances.
        validate: check NaN/inf and points outside the ball (one host sync).

    Returns:
        A scalar, or ``(B',)`` with ``reduction="none"``.

    Raises:
        ValueError: odd ``B`` without ``drop_last``, ``B < 2``, non-finite ``z``, points outside
            the ball, bad ``c``, unknown options.

    Deviation: default ``distance="artanh"``, the Poincaré distance the paper writes; the
    official code uses ``atan`` (``distance="official_atan"``).
    """
    check_reduction(reduction)
    c = check_curvature(c)
    check_choice("pairing", pairing, ("halves", "adjacent"))
    check_choice("distance", distance, ("artanh", "official_atan", "euclidean"))
    terms = _pc_terms(z, c, pairing, distance, drop_last, _mobius_eps(mobius_eps), validate)
    return reduce(terms, reduction)


class HypPCLoss(nn.Module):
    """Module twin of :func:`hyp_pc_loss`: ``forward(z (B, d))`` -> scalar or ``(B',)``."""

    def __init__(
        self,
        c: float = 0.1,
        *,
        pairing: Pairing = "halves",
        distance: PCDistance = "artanh",
        drop_last: bool = False,
        mobius_eps: float = 0.0,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.c = check_curvature(c)
        self.pairing: Pairing = check_choice("pairing", pairing, ("halves", "adjacent"))
        self.distance: PCDistance = check_choice(
            "distance", distance, ("artanh", "official_atan", "euclidean")
        )
        self.drop_last = bool(drop_last)
        self.mobius_eps = _mobius_eps(mobius_eps)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, z: Tensor) -> Tensor:
        """See :func:`hyp_pc_loss`."""
        terms = _pc_terms(
            z,
            self.c,
            self.pairing,
            self.distance,
            self.drop_last,
            self.mobius_eps,
            self.validate,
        )
        return reduce(terms, self.reduction)


def _ce_terms(logits: Tensor, target: Tensor, validate: bool) -> Tensor:
    check_float_tensor("logits", logits, 2, nonempty=True)
    if logits.shape[1] != 2:
        raise ValueError(
            f"logits: expected 2 columns (bona fide, spoof), got shape {tuple(logits.shape)}"
        )
    check_labels("target", target, n=logits.shape[0], num_classes=2, like=logits, validate=validate)
    check_finite("logits", logits, validate=validate)
    return F.cross_entropy(logits, target, reduction="none")


def hyp_ce_loss(
    logits: Tensor, target: Tensor, *, reduction: Reduction = "mean", validate: bool = True
) -> Tensor:
    r"""Hyp-CE: cross-entropy on the hyperbolic MLR logits, bona fide (0) vs pseudo-negative (1).

    .. math:: L_{CE} = -\frac{1}{N}\sum_n \log\operatorname{softmax}(\zeta(z_n))_{y_n}

    Args:
        logits: ``(N, 2)`` hyperbolic MLR logits.
        target: ``(N,)`` integer labels in ``{0, 1}``.
        reduction: ``"mean"`` (official), ``"sum"`` or ``"none"`` (``(N,)``).
        validate: check the label range and NaN/inf (one host sync each).

    Returns:
        A scalar, or ``(N,)`` with ``reduction="none"``.

    Raises:
        TypeError/ValueError: not 2 columns, labels outside ``{0, 1}`` or of another length,
            non-finite logits, an empty batch.
    """
    check_reduction(reduction)
    return reduce(_ce_terms(logits, target, validate), reduction)


class HypCELoss(nn.Module):
    """Module twin of :func:`hyp_ce_loss`: ``forward(logits (N, 2), target (N,))``."""

    def __init__(self, *, reduction: Reduction = "mean", validate: bool = True) -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """See :func:`hyp_ce_loss`."""
        return reduce(_ce_terms(logits, target, self.validate), self.reduction)
