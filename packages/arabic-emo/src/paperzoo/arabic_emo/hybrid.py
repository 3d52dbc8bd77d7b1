r"""The hybrid loss: ``L = L_wbce + lambda_corr * L_corr + lambda_con * L_con`` (spec section 3, step 5).

Each term is the function of :mod:`paperzoo.arabic_emo.losses`; the hybrid adds them per example
(``reduction="none"`` gives ``(N,)`` rows whose mean is the batch loss) and returns every term.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from paperzoo.arabic_emo.losses import (
    ContrastiveMode,
    CorrelationMode,
    check_logits,
    label_correlation_loss,
    multilabel_contrastive_loss,
    weighted_bce_loss,
)
from paperzoo.arabic_emo.stats import check_binary_labels
from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = ["HybridLoss", "HybridLossOutput", "hybrid_loss"]


class HybridLossOutput(NamedTuple):
    """The hybrid loss and its terms, each reduced as asked (scalars, or ``(N,)`` for ``"none"``).

    ``total = wbce + lambda_corr * corr + lambda_con * con``; a term whose lambda is 0 (or whose
    inputs are absent) is a zero of the same shape. :meth:`as_dict` gives ``{"loss": total, ...}``
    for a core ``fit`` step function.
    """

    total: Tensor
    wbce: Tensor
    corr: Tensor
    con: Tensor

    def as_dict(self) -> dict[str, Tensor]:
        """``{"loss": total, "wbce": ..., "corr": ..., "con": ...}``."""
        return {"loss": self.total, "wbce": self.wbce, "corr": self.corr, "con": self.con}


def hybrid_loss(
    logits: Tensor,
    targets: Tensor,
    embeddings: Tensor | None = None,
    *,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    correlation: Tensor | None = None,
    lambda_corr: float = 0.1,
    lambda_con: float = 0.1,
    corr_mode: CorrelationMode = "laplacian",
    con_mode: ContrastiveMode = "pairwise",
    margin: float = 1.0,
    temperature: float = 0.1,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> HybridLossOutput:
    r"""The hybrid loss of the paper (our reconstruction, spec section 3):

    .. math:: L = L_{wbce} + \lambda_{corr} L_{corr} + \lambda_{con} L_{con}

    Args:
        logits: ``(N, K)`` label logits.
        targets: ``(N, K)`` 0/1 labels (soft targets only when both lambdas are 0).
        embeddings: ``(N, d)`` summary embeddings ``h``; required when ``lambda_con > 0``.
        weight, pos_weight: ``(K,)`` weights of :func:`~paperzoo.arabic_emo.losses.weighted_bce_loss`.
        correlation: ``(K, K)`` ``C``; required when ``lambda_corr > 0``.
        lambda_corr, lambda_con: term weights (0.1 and 0.1, the spec's defaults; unverified
            against the paper).
        corr_mode, con_mode, margin, temperature: as the terms' functions.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)`` per-example rows; the
            contrastive and ``"align"`` rows depend on the whole batch).
        validate: finiteness, 0/1 and shape checks that need host syncs.

    Returns:
        :class:`HybridLossOutput` ``(total, wbce, corr, con)``.

    Raises:
        ValueError: a missing ``correlation``/``embeddings`` for a positive lambda, negative
            lambdas, and everything the terms raise (shapes, K mismatch, non-0/1 targets for the
            correlation/contrastive terms, NaN/inf, empty batch).
    """
    red = check_reduction(reduction)
    lc = check_positive("lambda_corr", lambda_corr, allow_zero=True)
    lk = check_positive("lambda_con", lambda_con, allow_zero=True)
    z = check_logits("logits", logits, validate)
    wbce = weighted_bce_loss(z, targets, weight, pos_weight, "none", validate=validate)
    zero = wbce * 0.0
    corr = zero
    con = zero
    if lc > 0 or lk > 0:
        check_binary_labels("targets", targets, validate=validate)
    if lc > 0:
        if correlation is None:
            raise ValueError("correlation: expected a (K, K) matrix when lambda_corr > 0, got None")
        corr = label_correlation_loss(z, correlation, corr_mode, "none", validate=validate)
    if lk > 0:
        if embeddings is None:
            raise ValueError("embeddings: expected an (N, d) tensor when lambda_con > 0, got None")
        con = multilabel_contrastive_loss(
            embeddings, targets, con_mode, margin, temperature, "none", validate=validate
        )
    elif embeddings is not None:
        check_finite("embeddings", embeddings, validate=validate)
    total = wbce + lc * corr + lk * con
    return HybridLossOutput(
        reduce(total, red), reduce(wbce, red), reduce(corr, red), reduce(con, red)
    )


class HybridLoss(nn.Module):
    """Module twin of :func:`hybrid_loss`; ``class_weights``, ``pos_weight`` and ``correlation``
    are buffers.

    Args:
        class_weights: ``(K,)`` ``w`` of the weighted BCE (``None``: all 1).
        correlation: ``(K, K)`` ``C`` (required when ``lambda_corr > 0``).
        lambda_corr, lambda_con: 0.1 and 0.1 (spec defaults).
        pos_weight: ``(K,)`` positive-term weights (``class_weights(labels, "pos_weight")``).
        corr_mode, con_mode, margin, temperature, reduction, validate: as :func:`hybrid_loss`.

    ``forward(logits (N, K), targets (N, K), embeddings (N, d) | None)`` →
    :class:`HybridLossOutput`.
    """

    class_weights: Tensor | None
    pos_weight: Tensor | None
    correlation: Tensor | None

    def __init__(
        self,
        class_weights: Tensor | None = None,
        correlation: Tensor | None = None,
        lambda_corr: float = 0.1,
        lambda_con: float = 0.1,
        *,
        pos_weight: Tensor | None = None,
        corr_mode: CorrelationMode = "laplacian",
        con_mode: ContrastiveMode = "pairwise",
        margin: float = 1.0,
        temperature: float = 0.1,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.lambda_corr = check_positive("lambda_corr", lambda_corr, allow_zero=True)
        self.lambda_con = check_positive("lambda_con", lambda_con, allow_zero=True)
        if self.lambda_corr > 0 and correlation is None:
            raise ValueError("correlation: expected a (K, K) matrix when lambda_corr > 0, got None")
        check_choice("corr_mode", corr_mode, ("laplacian", "align"))
        self.corr_mode: CorrelationMode = corr_mode
        check_choice("con_mode", con_mode, ("pairwise", "supcon"))
        self.con_mode: ContrastiveMode = con_mode
        self.margin = check_positive("margin", margin)
        self.temperature = check_positive("temperature", temperature)
        self.reduction = check_reduction(reduction)
        self.validate = validate
        for name, t in (
            ("class_weights", class_weights),
            ("pos_weight", pos_weight),
            ("correlation", correlation),
        ):
            self.register_buffer(name, None if t is None else t.detach().clone())

    def forward(
        self, logits: Tensor, targets: Tensor, embeddings: Tensor | None = None
    ) -> HybridLossOutput:
        """``logits``, ``targets``: ``(N, K)``; ``embeddings``: ``(N, d)`` or ``None``."""
        return hybrid_loss(
            logits,
            targets,
            embeddings,
            weight=self.class_weights,
            pos_weight=self.pos_weight,
            correlation=self.correlation,
            lambda_corr=self.lambda_corr,
            lambda_con=self.lambda_con,
            corr_mode=self.corr_mode,
            con_mode=self.con_mode,
            margin=self.margin,
            temperature=self.temperature,
            reduction=self.reduction,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return (
            f"lambda_corr={self.lambda_corr}, lambda_con={self.lambda_con}, "
            f"corr_mode={self.corr_mode!r}, con_mode={self.con_mode!r}"
        )
