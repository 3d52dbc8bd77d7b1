r"""Margin heads: ArcFace and CosFace class-weight layers that return margin-adjusted cosines.

A head holds the class weights ``W`` of shape ``(C, D)`` (the official layout; PyTorch's
``nn.Linear`` layout). ``head(x, y)`` returns the ``(B, C)`` cosines ``cos θ_ij = <x̂_i, Ŵ_j>``
with the target column replaced by the margin function ψ (unscaled: the scale ``s`` belongs to
the loss, :func:`paperzoo.unpg.unpg_cross_entropy`). ``head(x)`` (no labels) or
``head.cosine(x)`` gives the plain cosines for inference.

pytorch-metric-learning (PML) keeps its weights as ``(D, C)`` and its margins in **degrees**:
:func:`weight_to_pml` and :func:`margin_to_pml_degrees` convert.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    as_real,
    check_finite,
    check_float_tensor,
    check_labels,
    check_like,
    check_nonempty,
    check_positive_int,
)

__all__ = [
    "ArcFaceHead",
    "CosFaceHead",
    "MarginHead",
    "margin_to_pml_degrees",
    "weight_to_pml",
]

#: cosines are clamped to ``[-1 + ACOS_EPS, 1 - ACOS_EPS]`` before ``acos``
ACOS_EPS = 1e-7


def margin_to_pml_degrees(margin: float) -> float:
    """An ArcFace angular margin in radians as pytorch-metric-learning's ``margin`` (degrees).

    ``ArcFaceLoss(margin=margin_to_pml_degrees(0.5))`` uses the same 0.5 rad margin as
    ``ArcFaceHead(margin=0.5)``. (PML's ``CosFaceLoss`` margin is additive, not an angle: pass it
    unchanged.)
    """
    return math.degrees(as_real("margin", margin))


def weight_to_pml(weight: Tensor) -> Tensor:
    """Class weights ``(C, D)`` (ours, the official layout) as PML's ``W`` ``(D, C)`` (a copy)."""
    check_float_tensor("weight", weight, ndim=2)
    return weight.detach().t().contiguous()


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half / bfloat16 (margins, acos and log-sum-exp run in fp32), else ``dtype``."""
    return torch.promote_types(dtype, torch.float32)


class MarginHead(nn.Module):
    """Base of the margin heads: normalised class weights ``W`` ``(C, D)`` and input checks.

    Subclasses implement :meth:`margin` (ψ applied to the target cosines). Any module with
    ``in_features``, ``num_classes`` and ``forward(embeddings, labels) -> (B, C)`` margin-adjusted
    cosines works with :class:`paperzoo.unpg.UNPGLoss` (e.g. a MagFace or AdaFace head).

    Args:
        in_features: ``D``, the embedding size.
        num_classes: ``C``.
        validate: check finiteness of the embeddings and label range (one host sync each).
    """

    def __init__(self, in_features: int, num_classes: int, *, validate: bool = True) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.validate = bool(validate)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform class weights (as the official heads)."""
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """``cos θ`` ``(B, C)`` between L2-normalised ``embeddings`` ``(B, D)`` and class weights.

        Raises:
            TypeError/ValueError: not a float 2-D tensor, ``D != in_features``, empty, NaN/inf.
        """
        check_float_tensor("embeddings", embeddings, ndim=2)
        check_nonempty("embeddings", embeddings)
        if embeddings.shape[1] != self.in_features:
            raise ValueError(
                f"embeddings: expected shape (B, {self.in_features}) (the head's in_features), "
                f"got {tuple(embeddings.shape)}"
            )
        check_like("embeddings", embeddings, self.weight, owner="the head")
        check_finite("embeddings", embeddings, validate=self.validate)
        return F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))

    def margin(self, target_cosine: Tensor) -> Tensor:
        """ψ applied to the target cosines ``(B,)`` (computed in float32 or wider)."""
        raise NotImplementedError

    def forward(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Margin-adjusted cosines ``(B, C)`` (unscaled); plain cosines when ``labels`` is None.

        Args:
            embeddings: ``(B, D)`` features (normalised inside).
            labels: ``(B,)`` integer classes in ``[0, C)``, or None (inference).

        Returns:
            ``(B, C)``: ``cos θ_ij`` with column ``y_i`` of row ``i`` replaced by
            ``ψ(θ_{i,y_i})``; float32 for half-precision inputs (the margin runs in fp32).

        Raises:
            TypeError/ValueError: bad embeddings (see :meth:`cosine`), labels not 1-D integer,
                of length ``!= B`` or outside ``[0, C)``.
        """
        cos = self.cosine(embeddings)
        if labels is None:
            return cos
        check_labels(
            "labels",
            labels,
            n=embeddings.shape[0],
            num_classes=self.num_classes,
            like=embeddings,
            validate=self.validate,
        )
        cos = cos.to(_compute_dtype(cos.dtype))
        idx = labels.view(-1, 1)
        psi = self.margin(cos.gather(1, idx).squeeze(1))
        return cos.scatter(1, idx, psi.unsqueeze(1))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


class ArcFaceHead(MarginHead):
    r"""ArcFace head: ψ(θ) = cos(θ + m) on the target class (additive angular margin).

    Args:
        in_features: ``D``.
        num_classes: ``C``.
        margin: ``m`` in radians, in ``[0, π/2)``; 0.5 (official ``head.zoo.yaml``).
        easy_margin: use ψ = cos(θ + m) only where cos θ > 0 and cos θ elsewhere (off, as the
            official code; it has no θ + m > π correction either).
        validate: see :class:`MarginHead`.

    Shapes: ``forward(embeddings (B, D), labels (B,)) -> (B, C)``.

    Deviation: the official head applies ``acos`` to the raw cosines; we clamp them to
    ``[-1 + 1e-7, 1 - 1e-7]`` first (in float32 for half inputs) so that rounding past ±1 cannot
    give NaN and the gradient at θ = 0 stays finite. Away from ±1 the two agree exactly.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        margin: float = 0.5,
        easy_margin: bool = False,
        *,
        validate: bool = True,
    ) -> None:
        m = as_real("margin", margin)
        if not 0.0 <= m < math.pi / 2:
            raise ValueError(f"margin: expected a value in [0, π/2) radians, got {margin!r}")
        if not isinstance(easy_margin, bool):
            raise TypeError(f"easy_margin: expected a bool, got {type(easy_margin).__name__}")
        self.m = m
        self.easy_margin = easy_margin
        super().__init__(in_features, num_classes, validate=validate)

    def margin(self, target_cosine: Tensor) -> Tensor:
        """``cos(acos(clamp(c)) + m)`` per target cosine ``(B,)``."""
        c = target_cosine.clamp(-1.0 + ACOS_EPS, 1.0 - ACOS_EPS)
        psi = torch.cos(torch.acos(c) + self.m)
        if self.easy_margin:
            psi = torch.where(target_cosine > 0, psi, target_cosine)
        return psi

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.m}, easy_margin={self.easy_margin}"


class CosFaceHead(MarginHead):
    r"""CosFace head: ψ(θ) = cos θ - m on the target class (additive cosine margin).

    Args:
        in_features: ``D``.
        num_classes: ``C``.
        margin: ``m >= 0``; 0.35 (the official class default and CosFace paper; the official
            ``head.zoo.yaml`` trains with 0.5, see :func:`paperzoo.unpg.official`).
        validate: see :class:`MarginHead`.

    Shapes: ``forward(embeddings (B, D), labels (B,)) -> (B, C)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        margin: float = 0.35,
        *,
        validate: bool = True,
    ) -> None:
        m = as_real("margin", margin)
        if not (0.0 <= m <= 2.0):
            raise ValueError(f"margin: expected a value in [0, 2], got {margin!r}")
        self.m = m
        super().__init__(in_features, num_classes, validate=validate)

    def margin(self, target_cosine: Tensor) -> Tensor:
        """``c - m`` per target cosine ``(B,)``."""
        return target_cosine - self.m

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.m}"
