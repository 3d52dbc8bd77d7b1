"""Spec section 9: each bad input gets a clear ValueError/TypeError naming the argument."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from paperzoo.ldr import (
    ALDRKLLoss,
    LDRKLLoss,
    class_dependent_label_noise,
    crammer_singer_loss,
    ldr_kl_loss,
    ldr_loss,
    uniform_label_noise,
    weston_watkins_loss,
)

F = torch.randn(4, 5)
Y = torch.tensor([0, 1, 2, 4])


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.randn(4), Y, ValueError, "logits must have shape"),
        (torch.randn(4, 5, 2), Y, ValueError, "logits must have shape"),
        (torch.randn(4, 1), torch.zeros(4, dtype=torch.long), ValueError, "K >= 2"),
        (torch.randn(0, 5), Y[:0], ValueError, "empty batch"),
        (torch.ones(4, 5, dtype=torch.long), Y, TypeError, "floating dtype"),
        (F, torch.tensor([0, 1, 2, 5]), ValueError, r"target class indices must lie in \[0, 5\)"),
        (F, torch.tensor([0, -1, 2, 4]), ValueError, "target class indices"),
        (F, Y[:3], ValueError, "target has shape"),
        (F, Y.float(), TypeError, "integer dtype"),
        (F, torch.ones(4, 5), ValueError, "one-hot target"),
        (F, torch.ones(4, 4), ValueError, "one-hot target must have shape"),
        (F, torch.full((4, 5), 0.2), ValueError, "soft labels"),
        (F, Y.reshape(2, 2, 1), ValueError, "target must be"),
        (torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]), Y[:2] % 2, ValueError, "NaN or Inf"),
        (torch.tensor([[float("inf"), 0.0], [0.0, 1.0]]), Y[:2] % 2, ValueError, "NaN or Inf"),
    ],
)
def test_bad_logits_and_targets_raise_clear_errors(
    logits: Tensor, target: Tensor, error: type[Exception], match: str
) -> None:
    fns: list[Callable[..., Tensor]] = [ldr_kl_loss, crammer_singer_loss, weston_watkins_loss]
    for fn in fns:
        with pytest.raises(error, match=match):
            fn(logits, target)
    with pytest.raises(error, match=match):
        ALDRKLLoss(10)(logits, target, torch.arange(logits.shape[0]) if logits.dim() else None)


@pytest.mark.parametrize("lam", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_lambda_raises(lam: float) -> None:
    with pytest.raises(ValueError, match="lam must be finite and > 0"):
        ldr_kl_loss(F, Y, lam=lam)
    with pytest.raises(ValueError, match="lam must be"):
        LDRKLLoss(lam=lam)


def test_bad_lambda_tensor_raises() -> None:
    with pytest.raises(ValueError, match="lam given as a tensor"):
        ldr_kl_loss(F, Y, lam=torch.ones(3))
    with pytest.raises(ValueError, match="lam must be finite and > 0 for every example"):
        ldr_kl_loss(F, Y, lam=torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_negative_margin_raises() -> None:
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss):
        with pytest.raises(ValueError, match="margin must be finite and >= 0"):
            fn(F, Y, margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        ALDRKLLoss(5, margin=-1.0)


def test_unknown_strings_raise() -> None:
    with pytest.raises(ValueError, match="normalize must be one of"):
        ldr_kl_loss(F, Y, normalize="softmax")
    with pytest.raises(ValueError, match="reduction must be one of"):
        ldr_kl_loss(F, Y, reduction="avg")
    with pytest.raises(ValueError, match="region must be one of"):
        ldr_loss(F, Y, region="ball")
    with pytest.raises(ValueError, match="regularizer must be one of"):
        ldr_loss(F, Y, regularizer="entropy")
    with pytest.raises(ValueError, match="normalize must be one of"):
        ALDRKLLoss(5, normalize="l2")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alpha": 1.0}, ValueError, "alpha must be > 1"),
        ({"alpha": 0.5}, ValueError, "alpha must be > 1"),
        ({"lam0": 0.0}, ValueError, "lam0 must be finite and > 0"),
        ({"lam0": -2.0}, ValueError, "lam0"),
        ({"num_samples": 0}, ValueError, "num_samples must be >= 1"),
        ({"num_samples": 3.0}, TypeError, "num_samples must be an int"),
    ],
)
def test_bad_aldr_parameters_raise(
    kwargs: dict[str, float], error: type[Exception], match: str
) -> None:
    args: dict[str, float] = {"num_samples": 10, **kwargs}
    with pytest.raises(error, match=match):
        ALDRKLLoss(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("index", "error", "match"),
    [
        (None, ValueError, "index is required"),
        (torch.tensor([0, 1, 2, 10]), ValueError, r"index must lie in \[0, num_samples=10\)"),
        (torch.tensor([0, 1, -1, 3]), ValueError, "index must lie in"),
        (torch.tensor([0, 1, 2]), ValueError, r"index must have shape \(4,\)"),
        (torch.tensor([[0, 1, 2, 3]]), ValueError, "index must have shape"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "index must have an integer dtype"),
        ([0, 1, 2, 3], TypeError, "index must be a torch.Tensor"),
    ],
)
def test_bad_aldr_index_raises(index: object, error: type[Exception], match: str) -> None:
    loss = ALDRKLLoss(10)
    with pytest.raises(error, match=match):
        loss(F, Y, index)  # type: ignore[arg-type]
    assert torch.equal(loss.lambdas, torch.full((10,), 10.0))


def test_bad_noise_arguments_raise() -> None:
    with pytest.raises(ValueError, match="eta must lie in"):
        uniform_label_noise(Y, 5, 1.5)
    with pytest.raises(ValueError, match="num_classes"):
        uniform_label_noise(Y, 1, 0.5)
    with pytest.raises(ValueError, match="y must lie in"):
        uniform_label_noise(Y, 3, 0.5)
    with pytest.raises(TypeError, match="y must be"):
        class_dependent_label_noise(Y.float(), 5, 0.5)
    with pytest.raises(ValueError, match="mapping"):
        class_dependent_label_noise(Y, 5, 0.5, mapping=torch.arange(4))
