"""Section 9: each bad input gets a clear error naming the argument."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from paperzoo.ensloss import (
    EnsLoss,
    LambdaResampler,
    ensloss,
    ensloss_derivatives,
    hinge_loss,
    inverse_box_cox,
)

X = torch.randn(6)
T = torch.tensor([0, 1, 1, 0, 1, 0])


def test_several_logit_columns_are_refused_as_binary_only() -> None:
    with pytest.raises(ValueError, match="binary-only"):
        ensloss(torch.randn(6, 3), T)
    with pytest.raises(ValueError, match="binary-only"):
        hinge_loss(torch.randn(6, 2), T)


@pytest.mark.parametrize(
    ("target", "fmt"),
    [
        (torch.tensor([0, 1, 2, 0, 1, 0]), "01"),
        (torch.tensor([0, 1, -1, 0, 1, 0]), "01"),
        (torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 0.0]), "01"),
        (torch.tensor([0, 1, 1, 0, 1, 0]), "pm1"),
    ],
)
def test_targets_outside_the_format_are_refused(target: torch.Tensor, fmt: str) -> None:
    with pytest.raises(ValueError, match="target: expected values in"):
        ensloss(X, target, target_format=fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("logits", "target"),
    [
        (torch.randn(6), T[:5]),
        (torch.randn(6, 1), T[:, None][:4]),
        (torch.randn(6), T[:, None].repeat(1, 2)),
    ],
)
def test_shape_mismatches_are_refused(logits: torch.Tensor, target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="target"):
        ensloss(logits, target)


def test_empty_batch_and_nonfinite_logits_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ensloss(torch.randn(0), T[:0])
    for bad in (float("nan"), float("inf")):
        x = X.clone()
        x[2] = bad
        with pytest.raises(ValueError, match="logits: expected finite"):
            ensloss(x, T)
    with pytest.raises(ValueError, match="margins"):
        ensloss_derivatives(torch.tensor([0.0, float("nan")]))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"clip": 0.0}, "clip"),
        ({"clip": -1.0}, "clip"),
        ({"eps": -1e-6}, "eps"),
        ({"tail_start": 0.0}, "tail_start"),
        ({"tail_start": -2.0}, "tail_start"),
        ({"lam": float("nan")}, "lam"),
        ({"target_format": "binary"}, "target_format"),
        ({"reduction": "avg"}, "reduction"),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        EnsLoss(**kwargs)
    with pytest.raises(ValueError, match=name):
        ensloss(X, T, **kwargs)


def test_wrong_types_raise_type_errors() -> None:
    with pytest.raises(TypeError, match="logits"):
        ensloss(torch.arange(6), T)
    with pytest.raises(TypeError, match="target"):
        ensloss(X, [0, 1, 1, 0, 1, 0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        EnsLoss(generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lam"):
        inverse_box_cox(X, "zero")  # type: ignore[arg-type]


def test_resampler_period_and_bounds_are_checked() -> None:
    for period in (0, -3):
        with pytest.raises(ValueError, match="period"):
            LambdaResampler(EnsLoss(), period)
    with pytest.raises(ValueError, match="low, high"):
        LambdaResampler(EnsLoss(), 1, low=0.5, high=-0.5)
    with pytest.raises(TypeError, match="loss"):
        LambdaResampler(torch.nn.BCEWithLogitsLoss(), 1)  # type: ignore[arg-type]


@pytest.mark.gpu
def test_a_generator_on_another_device_is_refused() -> None:
    with pytest.raises(ValueError, match="generator"):
        ensloss(X.cuda(), T.cuda(), generator=torch.Generator())
