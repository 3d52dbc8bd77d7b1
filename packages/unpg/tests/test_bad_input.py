"""Each bad input of spec section 9 gets a clear error naming the argument."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from paperzoo.unpg import (
    ArcFaceHead,
    CosFaceHead,
    UNPGLoss,
    box_whisker_filter,
    unpg_cross_entropy,
    unpg_loss,
)

D, C = 4, 3


def _ok() -> tuple[Tensor, Tensor, ArcFaceHead]:
    torch.manual_seed(0)
    return torch.randn(6, D), torch.tensor([0, 1, 2, 0, 1, 2]), ArcFaceHead(D, C)


def test_embeddings_not_2d_or_wrong_width() -> None:
    x, y, head = _ok()
    with pytest.raises(ValueError, match="embeddings: expected a 2-D"):
        unpg_loss(x[0], y, head)
    with pytest.raises(ValueError, match=r"embeddings: expected shape \(B, 4\)"):
        unpg_loss(torch.randn(6, D + 1), y, head)


def test_labels_wrong_dtype_length_or_range() -> None:
    x, y, head = _ok()
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        unpg_loss(x, y.float(), head)
    with pytest.raises(ValueError, match="labels: expected a 1-D"):
        unpg_loss(x, y.view(2, 3), head)
    with pytest.raises(ValueError, match="labels: expected 6 labels"):
        unpg_loss(x, y[:5], head)
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 3\)"):
        unpg_loss(x, y + 1, head)
    with pytest.raises(ValueError, match="labels"):
        unpg_loss(x, y - 1, head)


def test_nonfinite_embeddings_or_weights() -> None:
    x, y, head = _ok()
    x[1, 1] = math.inf
    with pytest.raises(ValueError, match="embeddings: expected finite"):
        unpg_loss(x, y, head)
    x, y, head = _ok()
    with torch.no_grad():
        head.weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="head.weight: expected finite"):
        unpg_loss(x, y, head)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan])
def test_scale_must_be_positive(scale: float) -> None:
    x, y, head = _ok()
    with pytest.raises(ValueError, match="scale"):
        unpg_loss(x, y, head, scale=scale)
    with pytest.raises(ValueError, match="scale"):
        UNPGLoss(head, scale=scale)


def test_whisker_must_be_non_negative_inf_allowed() -> None:
    x, y, head = _ok()
    with pytest.raises(ValueError, match="whisker: expected a value >= 0"):
        UNPGLoss(head, whisker=-0.5)
    with pytest.raises(ValueError, match="whisker"):
        box_whisker_filter(torch.zeros(5), whisker=math.nan)
    assert bool(torch.isfinite(unpg_loss(x, y, head, whisker=math.inf)))


@pytest.mark.parametrize("margin", [-0.1, math.pi / 2, 2.0])
def test_arcface_margin_range(margin: float) -> None:
    with pytest.raises(ValueError, match=r"margin: expected a value in \[0, π/2\)"):
        ArcFaceHead(D, C, margin=margin)


def test_cosface_margin_and_head_sizes() -> None:
    with pytest.raises(ValueError, match="margin"):
        CosFaceHead(D, C, margin=-0.1)
    with pytest.raises(ValueError, match="num_classes"):
        ArcFaceHead(D, 0)
    with pytest.raises(TypeError, match="in_features"):
        ArcFaceHead(2.5, C)  # type: ignore[arg-type]


def test_extra_negatives_must_be_cosines_when_checked() -> None:
    logits = torch.zeros(2, C)
    y = torch.tensor([0, 1])
    bad = torch.tensor([0.2, 1.01])
    assert bool(torch.isfinite(unpg_cross_entropy(logits, y, bad)))  # unchecked by default
    with pytest.raises(ValueError, match=r"extra_negatives: expected cosine similarities"):
        unpg_cross_entropy(logits, y, bad, check_range=True)
    unpg_cross_entropy(logits, y, torch.tensor([1.00005]), check_range=True)  # within 1e-4
    with pytest.raises(ValueError, match="extra_negatives: expected a 1-D"):
        unpg_cross_entropy(logits, y, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="mask"):
        unpg_cross_entropy(logits, y, torch.zeros(3), mask=torch.ones(2, dtype=torch.bool))


def test_unknown_reduction() -> None:
    x, y, head = _ok()
    with pytest.raises(ValueError, match="reduction"):
        unpg_loss(x, y, head, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        UNPGLoss(head, reduction="batchmean")  # type: ignore[arg-type]


class _BadHead(nn.Module):
    in_features = D
    num_classes = C

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return x[:, :2]


def test_head_output_shape_is_checked() -> None:
    x, y, _ = _ok()
    with pytest.raises(ValueError, match=r"head output: expected shape \(B, C\) = \(6, 3\)"):
        unpg_loss(x, y, _BadHead())


def test_head_dtype_mismatch_is_named() -> None:
    x, y, head = _ok()
    with pytest.raises(TypeError, match="embeddings has dtype torch.float64"):
        unpg_loss(x.double(), y, head)


def test_unknown_quantile_rule() -> None:
    with pytest.raises(ValueError, match="quantile"):
        box_whisker_filter(torch.zeros(5), quantile="nearest")  # type: ignore[arg-type]
