r"""UNPG: a margin head's softmax plus the filtered in-batch negatives, end to end.

``L = (1/B) Σ_i -log( e^{s ψ_i} / (e^{s ψ_i} + Σ_{j≠y_i} e^{s cos θ_ij} + Σ_{t∈F(S_n^ML)} e^{s t}) )``

with ψ the head's margin (ArcFace / CosFace / any head returning margin-adjusted cosines),
``S_n^ML`` every different-label pair's cosine of the batch (:mod:`paperzoo.unpg.negatives`) and
``F`` the box-and-whisker filter. Every anchor gets the whole batch's negatives: the paper's aim is
one positive above *all* negatives (the authors' answer in junuke/UNPG#1); a per-anchor variant is
not the paper and is not offered.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_reduction,
)
from paperzoo.unpg.functional import unpg_cross_entropy
from paperzoo.unpg.heads import ArcFaceHead, CosFaceHead
from paperzoo.unpg.negatives import (
    QUANTILES,
    Quantile,
    check_whisker,
    negative_pair_similarities,
    whisker_mask,
)

__all__ = ["GatherFn", "UNPGLoss", "official", "unpg_loss"]

GatherFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``gather_fn(embeddings, labels) -> (all_embeddings, all_labels)``: the pool the negatives come from."""


def _unpg(
    head: nn.Module,
    embeddings: Tensor,
    labels: Tensor,
    *,
    scale: float,
    whisker: float,
    use_ml_negatives: bool,
    quantile: Quantile,
    reduction: Reduction,
    materialize: bool,
    gather_fn: GatherFn | None,
    validate: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The one computation behind :func:`unpg_loss` and :class:`UNPGLoss`: loss and stats."""
    red = check_reduction(reduction)
    s = check_positive("scale", scale)
    k = check_whisker(whisker)
    check_choice("quantile", quantile, QUANTILES)
    check_float_tensor("embeddings", embeddings, ndim=2)
    check_nonempty("embeddings", embeddings)
    d = getattr(head, "in_features", None)
    if d is not None and embeddings.shape[1] != d:
        raise ValueError(
            f"embeddings: expected shape (B, {d}) (the head's in_features), "
            f"got {tuple(embeddings.shape)}"
        )
    check_labels("labels", labels, n=embeddings.shape[0], like=embeddings, validate=False)
    check_finite("embeddings", embeddings, validate=validate)
    weight = getattr(head, "weight", None)
    if isinstance(weight, Tensor):
        check_finite("head.weight", weight, validate=validate)
    logits = head(embeddings, labels)
    num_classes = getattr(head, "num_classes", None)
    want = (embeddings.shape[0], num_classes if num_classes is not None else logits.shape[-1])
    if not isinstance(logits, Tensor) or tuple(logits.shape) != want:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"head output: expected shape (B, C) = {want}, got {got}")
    stats: dict[str, Tensor] = {}
    extra: Tensor | None = None
    keep: Tensor | None = None
    if use_ml_negatives:
        pool_x, pool_y = (
            (embeddings, labels) if gather_fn is None else gather_fn(embeddings, labels)
        )
        if pool_x.shape[0] < 2:
            warnings.warn(
                "UNPG: a batch of fewer than 2 embeddings has no pairs; using the base margin loss",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            sims, negative = negative_pair_similarities(pool_x, pool_y)
            keep, stats = whisker_mask(sims, negative, whisker=k, quantile=quantile)
            extra = sims
    loss = unpg_cross_entropy(
        logits,
        labels,
        extra,
        scale=s,
        reduction=red,
        materialize=materialize,
        mask=keep,
        validate=validate,
    )
    return loss, stats


def unpg_loss(
    embeddings: Tensor,
    labels: Tensor,
    head: nn.Module,
    scale: float = 64.0,
    whisker: float = 1.5,
    use_ml_negatives: bool = True,
    reduction: Reduction = "mean",
    *,
    quantile: Quantile = "index",
    materialize: bool = False,
    gather_fn: GatherFn | None = None,
    validate: bool = True,
) -> Tensor:
    r"""The UNPG loss of a batch (functional form of :class:`UNPGLoss`).

    Args:
        embeddings: ``(B, D)`` features (normalised inside; gradients flow through both the head
            cosines and the in-batch similarities, as in the official code).
        labels: ``(B,)`` integer identities in ``[0, C)``.
        head: a margin head, ``head(embeddings, labels) -> (B, C)`` margin-adjusted cosines
            (:class:`~paperzoo.unpg.ArcFaceHead`, :class:`~paperzoo.unpg.CosFaceHead`, ...).
        scale: ``s``; 64 (official).
        whisker: ``k`` of the box-and-whisker filter; 1.5 (official, MS1MV2; 1.0 for K-FACE);
            ``inf`` keeps every negative (plain MLPG negatives).
        use_ml_negatives: False gives the head's plain margin softmax (ArcFace / CosFace).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B,)``).
        quantile: the filter's quartile rule, ``"index"`` (official) or ``"linear"``.
        materialize: the official ``(B, C + M')`` concatenated-logit form (parity tests only).
        gather_fn: optional ``(embeddings, labels) -> (pool_embeddings, pool_labels)`` whose
            different-label pairs are the negatives (e.g. an all-gather across processes).
            Deviation/extension: the official code uses each device's own batch.
        validate: finiteness and label-range checks (host syncs); off in tight loops.

    Returns:
        A scalar, or ``(B,)`` with ``reduction="none"``. A batch with one identity (no negative
        pair) gives exactly the head's margin softmax; ``B < 2`` warns and does the same.

    Raises:
        TypeError/ValueError: embeddings not a non-empty 2-D float tensor or ``D`` not the head's
            ``in_features``; bad labels; NaN/inf in embeddings or ``head.weight``; ``scale <= 0``;
            ``whisker < 0``; head output not ``(B, C)``; an unknown reduction or quantile.
    """
    loss, _ = _unpg(
        head,
        embeddings,
        labels,
        scale=scale,
        whisker=whisker,
        use_ml_negatives=use_ml_negatives,
        quantile=quantile,
        reduction=reduction,
        materialize=materialize,
        gather_fn=gather_fn,
        validate=validate,
    )
    return loss


class UNPGLoss(nn.Module):
    r"""UNPG around a margin head: ``UNPGLoss(ArcFaceHead(512, C))(embeddings, labels)``.

    Holds the head (so its class weights train with the model). See :func:`unpg_loss` for the
    formula and arguments. ``last_stats`` holds detached 0-D tensors of the last call (``M``
    negatives, ``kept`` after the filter, quartiles ``q1``/``q3``, ``min``/``max`` of ``S_n^ML``;
    empty without in-batch negatives): reading them is the only host sync.

    Shapes: ``forward(embeddings (B, D), labels (B,)) -> ()`` (or ``(B,)`` with
    ``reduction="none"``).
    """

    def __init__(
        self,
        head: nn.Module,
        scale: float = 64.0,
        whisker: float = 1.5,
        use_ml_negatives: bool = True,
        reduction: Reduction = "mean",
        *,
        quantile: Quantile = "index",
        materialize: bool = False,
        gather_fn: GatherFn | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(head, nn.Module):
            raise TypeError(f"head: expected an nn.Module, got {type(head).__name__}")
        self.head = head
        self.scale = check_positive("scale", scale)
        self.whisker = check_whisker(whisker)
        self.use_ml_negatives = bool(use_ml_negatives)
        self.reduction: Reduction = check_reduction(reduction)
        self.quantile: Quantile = check_choice("quantile", quantile, QUANTILES)
        self.materialize = bool(materialize)
        self.gather_fn = gather_fn
        self.validate = bool(validate)
        self.last_stats: dict[str, Tensor] = {}

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The loss of a batch; see :func:`unpg_loss`."""
        loss, stats = _unpg(
            self.head,
            embeddings,
            labels,
            scale=self.scale,
            whisker=self.whisker,
            use_ml_negatives=self.use_ml_negatives,
            quantile=self.quantile,
            reduction=self.reduction,
            materialize=self.materialize,
            gather_fn=self.gather_fn,
            validate=self.validate,
        )
        self.last_stats = {k: v.detach() for k, v in stats.items()}
        return loss

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, whisker={self.whisker}, "
            f"use_ml_negatives={self.use_ml_negatives}, reduction={self.reduction!r}"
        )


def official(head: str, in_features: int, num_classes: int) -> UNPGLoss:
    """The official training configuration (``head.zoo.yaml``): s = 64, m = 0.5, whisker 1.5.

    Args:
        head: ``"arcface"`` or ``"cosface"`` (both with margin 0.5, as the official configs;
            :class:`~paperzoo.unpg.CosFaceHead`'s own default is 0.35).
        in_features: ``D``; num_classes: ``C``.
    """
    check_choice("head", head, ("arcface", "cosface"))
    base: nn.Module = (
        ArcFaceHead(in_features, num_classes, margin=0.5)
        if head == "arcface"
        else CosFaceHead(in_features, num_classes, margin=0.5)
    )
    return UNPGLoss(base, scale=64.0, whisker=1.5)
