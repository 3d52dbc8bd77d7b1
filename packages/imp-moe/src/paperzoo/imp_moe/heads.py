"""Heads and objectives (spec 3.2): per-dataset classifiers with softmax cross-entropy, common
spaces for cross-modal NCE, and the symmetric NCE loss with a learnable temperature."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)

__all__ = [
    "ClassificationHead",
    "ClassificationLoss",
    "CommonSpace",
    "CrossModalNCELoss",
    "classification_loss",
    "cross_modal_nce",
]


class ClassificationHead(nn.Module):
    """A per-dataset linear classifier on pooled features: ``(B, d) -> (B, n)`` logits."""

    def __init__(self, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.linear = nn.Linear(d_model, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero-initialised classifier (the ViT/IMP head convention)."""
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, d) -> (B, n)``."""
        check_float_tensor("x", x, ndim=2, nonempty=True)
        if x.shape[1] != self.d_model:
            raise ValueError(f"x: expected shape (B, {self.d_model}), got {tuple(x.shape)}")
        check_finite("x", x)
        out: Tensor = self.linear(x)
        return out


def _classification_core(logits: Tensor, target: Tensor, validate: bool) -> Tensor:
    check_float_tensor("logits", logits, ndim=2, nonempty=True)
    check_finite("logits", logits, validate=validate)
    logp = logits.log_softmax(dim=-1)
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"target: expected multi-label targets of shape {tuple(logits.shape)}, got "
                f"{tuple(target.shape)}"
            )
        w = target / target.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return -(w.to(logp.dtype) * logp).sum(dim=-1)
    check_labels(
        "target", target, n=logits.shape[0], num_classes=logits.shape[1], validate=validate
    )
    return -logp.gather(1, target.unsqueeze(1)).squeeze(1)


def classification_loss(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", validate: bool = True
) -> Tensor:
    """Softmax cross-entropy ``-sum_c w_c log softmax(s)_c``, IMP's classification objective.

    Args:
        logits: ``(N, C)``.
        target: ``(N,)`` int64 labels in ``[0, C)``, or ``(N, C)`` float multi-label targets
            (normalised to sum 1 per row, as the official objective).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).
        validate: check finiteness and label range (host syncs).

    Raises:
        TypeError/ValueError: bad shapes or dtypes, labels outside ``[0, C)``, NaN/inf logits.
    """
    check_reduction(reduction)
    return reduce(_classification_core(logits, target, validate), reduction)


class ClassificationLoss(nn.Module):
    """Module twin of :func:`classification_loss`: ``forward(logits (N, C), target) -> loss``."""

    def __init__(self, reduction: Reduction = "mean", validate: bool = True) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss (0-d, or ``(N,)`` with ``reduction="none"``)."""
        return reduce(_classification_core(logits, target, self.validate), self.reduction)


class CommonSpace(nn.Module):
    """Projections into common spaces for cross-modal NCE.

    ``kind="disjoint"`` (IMP): one linear projection per (source -> target) modality pair, so
    video->text and video->audio embeddings of one video differ; ``"joint"``: one projection per
    modality shared by all its pairs.

    Shapes: ``forward(x (B, d), source, target) -> (B, d_common)`` (``source``/``target`` may be
    omitted when there is one pair). Projections have no bias.
    """

    def __init__(
        self,
        d_model: int,
        d_common: int,
        pairs: Sequence[tuple[str, str]],
        kind: Literal["disjoint", "joint"] = "disjoint",
    ) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.d_common = check_positive_int("d_common", d_common)
        self.kind = check_choice("kind", kind, ("disjoint", "joint"))
        self.pairs = [(str(a), str(b)) for a, b in pairs]
        if not self.pairs:
            raise ValueError("pairs: expected at least one (source, target) pair, got none")
        keys = (
            {f"{a}->{b}" for a, b in self.pairs}
            if kind == "disjoint"
            else {m for p in self.pairs for m in p}
        )
        self.proj = nn.ModuleDict(
            {k: nn.Linear(d_model, d_common, bias=False) for k in sorted(keys)}
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections."""
        for m in self.proj.values():
            nn.init.xavier_uniform_(m.weight)  # type: ignore[arg-type]

    def forward(self, x: Tensor, source: str | None = None, target: str | None = None) -> Tensor:
        """Project ``x (B, d)`` from ``source`` towards ``target``: ``(B, d_common)``.

        Raises:
            ValueError: a pair that was not declared; a wrong shape.
        """
        check_float_tensor("x", x, ndim=2, nonempty=True)
        if x.shape[1] != self.d_model:
            raise ValueError(f"x: expected shape (B, {self.d_model}), got {tuple(x.shape)}")
        check_finite("x", x)
        if source is None and target is None and len(self.pairs) == 1:
            source, target = self.pairs[0]
        if (source, target) not in self.pairs:
            raise ValueError(
                f"source, target: expected one of {self.pairs}, got {(source, target)}"
            )
        key = f"{source}->{target}" if self.kind == "disjoint" else str(source)
        out: Tensor = self.proj[key](x)
        return out


def _nce_core(za: Tensor, zb: Tensor, tau: Tensor | float, validate: bool) -> Tensor:
    check_float_tensor("za", za, ndim=2, nonempty=True)
    check_float_tensor("zb", zb, ndim=2, nonempty=True)
    if za.shape != zb.shape:
        raise ValueError(
            f"za, zb: expected the same shape (B, k), got {tuple(za.shape)} and {tuple(zb.shape)}"
        )
    if za.shape[0] < 2:
        raise ValueError(f"za: expected a batch of at least 2 pairs (NCE), got {za.shape[0]}")
    check_finite("za", za, validate=validate)
    check_finite("zb", zb, validate=validate)
    a = F.normalize(za, dim=-1)
    b = F.normalize(zb, dim=-1)
    logits = a @ b.T / tau
    diag = torch.arange(za.shape[0], device=za.device)
    rows = F.cross_entropy(logits, diag, reduction="none")
    cols = F.cross_entropy(logits.T, diag, reduction="none")
    return 0.5 * (rows + cols)


def cross_modal_nce(
    za: Tensor,
    zb: Tensor,
    tau: Tensor | float = 0.2,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Tensor:
    """Symmetric cross-modal NCE: ``z = normalise(.)``, ``L = z_a z_b^T / tau``, loss
    ``1/2 [CE(L, diag) + CE(L^T, diag)]``.

    Example ``i`` of ``reduction="none"`` is ``1/2`` (its row's CE + its column's CE); the mean
    equals the official ``1/2 (mean row CE + mean column CE)``.

    Args:
        za, zb: paired embeddings ``(B, k)``, ``B >= 2`` (row i of each is a positive pair).
        tau: temperature (float or 0-d tensor, > 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B,)``).
        validate: check finiteness (host syncs).

    Raises:
        ValueError: different shapes, ``B < 2``, NaN/inf. TypeError: non-float input.
    """
    check_reduction(reduction)
    if not isinstance(tau, Tensor):
        check_positive("tau", tau)
    return reduce(_nce_core(za, zb, tau, validate), reduction)


class CrossModalNCELoss(nn.Module):
    """Module twin of :func:`cross_modal_nce` with a learnable temperature.

    ``tau = exp(log_tau)``, ``log_tau`` a parameter initialised at ``log(temperature_init)``
    (IMP: 0.2 for dense models, 1.0 for MoE models "for faster warmup"). Deviation: the log
    parameterisation of the learnable temperature is our choice (the official one is
    unverified). Couples the batch by definition (in-batch negatives).
    """

    def __init__(
        self,
        temperature_init: float = 0.2,
        learnable: bool = True,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.temperature_init = check_positive("temperature_init", temperature_init)
        self.reduction = check_reduction(reduction)
        self.validate = validate
        log_tau = torch.tensor(math.log(self.temperature_init))
        if learnable:
            self.log_tau: Tensor = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)

    @property
    def temperature(self) -> Tensor:
        """The current ``tau`` (0-d)."""
        return self.log_tau.exp()

    def forward(self, za: Tensor, zb: Tensor) -> Tensor:
        """``za, zb (B, k)`` -> loss (0-d, or ``(B,)`` with ``reduction="none"``)."""
        tau = self.log_tau.to(za.dtype).exp() if isinstance(za, Tensor) else self.temperature
        return reduce(_nce_core(za, zb, tau, self.validate), self.reduction)
