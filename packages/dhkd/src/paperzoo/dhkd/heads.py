"""The dual-head student: a shared backbone, the main head (labels) and the auxiliary head (teacher).

At inference only the main head is used; :meth:`DualHeadClassifier.export_single_head` drops the
auxiliary head. :func:`add_aux_head` turns a model whose last layer is an ``nn.Linear`` (a
torchvision-style ``fc``) into a :class:`DualHeadClassifier` that keeps that layer as the main head.
"""

from __future__ import annotations

import copy
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_nonempty,
    check_positive_int,
)

__all__ = [
    "AuxHead",
    "DualHeadClassifier",
    "DualHeadOutput",
    "NonLinearHead",
    "add_aux_head",
]

AuxHead = Literal["linear", "nonlinear"] | nn.Module
"""An auxiliary head: ``"linear"``, ``"nonlinear"`` (:class:`NonLinearHead`) or any module
mapping ``(N, feat_dim)`` features to ``(N, K)`` logits."""


class DualHeadOutput(NamedTuple):
    """The two heads' logits on one batch: ``main`` ``(N, K)`` (labels), ``aux`` ``(N, K)`` (teacher)."""

    main: Tensor
    aux: Tensor


def _reset(module: nn.Module) -> None:
    """``reset_parameters`` of every leaf sub-module that has one (linear, conv, batch norm)."""
    for m in module.modules():
        if m is not module and not list(m.children()):
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()


class NonLinearHead(nn.Module):
    """The official non-linear auxiliary head (``models/classifier.py``):
    ``Linear(d, 200) -> Dropout(0.1) -> BatchNorm1d(200) -> ReLU -> Linear(200, K)``.

    Args:
        feat_dim: ``d``, the backbone's feature width.
        num_classes: ``K``.
        hidden: width of the hidden layer (200 in the reference).
        dropout: dropout probability (0.1 in the reference).
    """

    def __init__(
        self, feat_dim: int, num_classes: int, hidden: int = 200, dropout: float = 0.1
    ) -> None:
        super().__init__()
        d = check_positive_int("feat_dim", feat_dim)
        k = check_positive_int("num_classes", num_classes)
        h = check_positive_int("hidden", hidden)
        self.feat_dim = d
        self.net = nn.Sequential(
            nn.Linear(d, h), nn.Dropout(dropout), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, k)
        )

    def reset_parameters(self) -> None:
        """Re-draw the linear layers and reset the batch norm (affine and running statistics)."""
        _reset(self)

    def forward(self, h: Tensor) -> Tensor:
        """``(N, feat_dim)`` -> ``(N, K)``; ``ValueError`` for another shape or an empty batch."""
        check_float_tensor("h", h, ndim=2, nonempty=True)
        if h.shape[1] != self.feat_dim:
            raise ValueError(f"h: expected (N, {self.feat_dim}) features, got {tuple(h.shape)}")
        out: Tensor = self.net(h)
        return out


def _make_aux(aux_head: AuxHead, feat_dim: int, num_classes: int) -> nn.Module:
    if isinstance(aux_head, nn.Module):
        return aux_head
    if aux_head == "linear":
        return nn.Linear(feat_dim, num_classes)
    if aux_head == "nonlinear":
        return NonLinearHead(feat_dim, num_classes)
    raise ValueError(f"aux_head: expected 'linear', 'nonlinear' or an nn.Module, got {aux_head!r}")


class DualHeadClassifier(nn.Module):
    """A backbone with a main head (trained on labels) and an auxiliary head (trained on the teacher).

    ``forward(x)`` returns :class:`DualHeadOutput` ``(main, aux)`` while the module is in training
    mode and the main logits ``(N, K)`` alone in eval mode (the auxiliary head is dropped at
    inference, as in the paper); set ``return_both`` to force either behaviour.

    Args:
        backbone: maps the input ``(N, ...)`` to features ``(N, feat_dim)``.
        feat_dim: ``d``, the feature width.
        num_classes: ``K``.
        aux_head: ``"linear"`` (default; the ImageNet setting), ``"nonlinear"`` (the CIFAR
            README's ``--nonlinear``) or a module ``(N, d) -> (N, K)``.
        main_head: the main head (default: a fresh ``nn.Linear(d, K)``).
        return_both: ``None`` (default: both heads in training mode, main only in eval mode),
            ``True`` or ``False``.
        validate: check the input and the features for NaN/inf (host syncs).

    Raises:
        ValueError: (at forward) an empty batch, NaN/inf input, an input the backbone rejects
            (its ``RuntimeError``, e.g. a shape mismatch, re-raised naming ``x``), or backbone
            output not ``(N, feat_dim)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feat_dim: int,
        num_classes: int,
        aux_head: AuxHead = "linear",
        *,
        main_head: nn.Module | None = None,
        return_both: bool | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.feat_dim = check_positive_int("feat_dim", feat_dim)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.backbone = backbone
        self.fc = main_head if main_head is not None else nn.Linear(feat_dim, num_classes)
        self.aux = _make_aux(aux_head, self.feat_dim, self.num_classes)
        self.return_both = return_both
        self.validate = validate

    def reset_parameters(self) -> None:
        """Re-draw every sub-module that has ``reset_parameters`` (backbone and both heads)."""
        _reset(self)

    def features(self, x: Tensor) -> Tensor:
        """The backbone's features ``(N, feat_dim)``, checked."""
        check_float_tensor("x", x)
        check_nonempty("x", x)
        check_finite("x", x, validate=self.validate)
        try:
            h: Tensor = self.backbone(x)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:  # a shape error inside the backbone: name the input
            raise ValueError(
                f"x: the backbone rejected an input of shape {tuple(x.shape)} ({err})"
            ) from err
        if h.dim() != 2 or h.shape != (x.shape[0], self.feat_dim):
            raise ValueError(
                f"backbone: expected output (N, feat_dim) = ({x.shape[0]}, {self.feat_dim}), "
                f"got {tuple(h.shape)}"
            )
        return h

    def forward(self, x: Tensor) -> DualHeadOutput | Tensor:
        """``x`` ``(N, ...)`` -> :class:`DualHeadOutput` of two ``(N, K)`` (training) or ``(N, K)``."""
        h = self.features(x)
        main: Tensor = self.fc(h)
        both = self.training if self.return_both is None else self.return_both
        if not both:
            return main
        aux: Tensor = self.aux(h)
        return DualHeadOutput(main, aux)

    def export_single_head(self) -> nn.Module:
        """A copy ``nn.Sequential(backbone, main_head)`` without the auxiliary head, ``(N, ...) ->
        (N, K)``, in this module's training/eval mode."""
        single = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.fc))
        return single.train(self.training)


def add_aux_head(
    model: nn.Module, head_attr: str = "fc", aux_head: AuxHead = "linear"
) -> DualHeadClassifier:
    """Wrap ``model`` (whose last layer ``model.<head_attr>`` is an ``nn.Linear``) as a
    :class:`DualHeadClassifier`.

    The linear layer becomes the main head (weights kept); ``model.<head_attr>`` is replaced *in
    place* by ``nn.Identity()``, so ``model`` itself becomes the backbone returning features.
    ``head_attr`` may be dotted (``"head.fc"``). Example: ``add_aux_head(torchvision.models.
    resnet18(), "fc", "nonlinear")``.

    Raises:
        ValueError: ``model`` has no sub-module ``head_attr``, or it is not an ``nn.Linear``.
    """
    parent_name, _, leaf = head_attr.rpartition(".")
    try:
        parent = model.get_submodule(parent_name) if parent_name else model
        head = getattr(parent, leaf)
    except AttributeError:
        raise ValueError(
            f"head_attr: {type(model).__name__} has no sub-module {head_attr!r}"
        ) from None
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"head_attr: expected {head_attr!r} to be an nn.Linear, got {type(head).__name__}"
        )
    setattr(parent, leaf, nn.Identity())
    out = DualHeadClassifier(model, head.in_features, head.out_features, aux_head, main_head=head)
    out.aux.to(head.weight.device, head.weight.dtype)
    return out
