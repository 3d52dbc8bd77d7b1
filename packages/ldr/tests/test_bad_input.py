"""Spec section 9: each bad input gets a clear ValueError/TypeError naming the argument."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from paperzoo.ldr import (
    ALDRKLLoss,
    LDRKLLoss,
    aldr_kl_loss,
    class_dependent_label_noise,
    crammer_singer_loss,
    gce_loss,
    ldr_kl_loss,
    ldr_loss,
    mae_loss,
    margin_differences,
    normalize_scores,
    uniform_label_noise,
    weston_watkins_loss,
)

F = torch.randn(4, 5)
Y = torch.tensor([0, 1, 2, 4])


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.randn(4), Y, ValueError, "logits: expected a 2-D tensor"),
        (torch.randn(4, 5, 2), Y, ValueError, "logits: expected a 2-D tensor"),
        (
            torch.randn(4, 1),
            torch.zeros(4, dtype=torch.long),
            ValueError,
            "logits: expected \\(B, K\\) with K >= 2",
        ),
        (torch.randn(0, 5), Y[:0], ValueError, "logits: expected a non-empty batch"),
        (
            torch.ones(4, 5, dtype=torch.long),
            Y,
            TypeError,
            "logits: expected a floating-point tensor",
        ),
        (F, torch.tensor([0, 1, 2, 5]), ValueError, r"target: expected labels in \[0, 5\)"),
        (F, torch.tensor([0, -1, 2, 4]), ValueError, "target: expected labels in"),
        (F, Y[:3], ValueError, "target: expected 4 labels"),
        (F, Y.float(), TypeError, "target: expected an integer dtype"),
        (F, torch.ones(4, 5), ValueError, "target: expected a one-hot"),
        (F, torch.ones(4, 4), ValueError, "target: expected a one-hot of shape"),
        (F, torch.full((4, 5), 0.2), ValueError, "soft labels"),
        (
            F,
            Y.reshape(2, 2, 1),
            ValueError,
            r"target: expected \(4,\) class indices or \(4, 5\) one-hot",
        ),
        (
            torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]),
            Y[:2] % 2,
            ValueError,
            "logits: expected finite values",
        ),
        (
            torch.tensor([[float("inf"), 0.0], [0.0, 1.0]]),
            Y[:2] % 2,
            ValueError,
            "logits: expected finite values",
        ),
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
    with pytest.raises(ValueError, match="lam: expected a finite value > 0"):
        ldr_kl_loss(F, Y, lam=lam)
    with pytest.raises(ValueError, match="lam: expected a finite value > 0"):
        LDRKLLoss(lam=lam)


def test_bad_lambda_tensor_raises() -> None:
    with pytest.raises(ValueError, match=r"lam: expected a floating tensor of shape \(4,\)"):
        ldr_kl_loss(F, Y, lam=torch.ones(3))
    with pytest.raises(ValueError, match="lam: expected finite values > 0 for every example"):
        ldr_kl_loss(F, Y, lam=torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_negative_margin_raises() -> None:
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss):
        with pytest.raises(ValueError, match="margin: expected a finite value >= 0"):
            fn(F, Y, margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        ALDRKLLoss(5, margin=-1.0)


def test_unknown_strings_raise() -> None:
    with pytest.raises(ValueError, match="normalize: expected one of"):
        ldr_kl_loss(F, Y, normalize="softmax")
    with pytest.raises(ValueError, match="reduction: expected one of"):
        ldr_kl_loss(F, Y, reduction="avg")
    with pytest.raises(ValueError, match="region: expected one of"):
        ldr_loss(F, Y, region="ball")
    with pytest.raises(ValueError, match="regularizer: expected one of"):
        ldr_loss(F, Y, regularizer="entropy")
    with pytest.raises(ValueError, match="normalize: expected one of"):
        ALDRKLLoss(5, normalize="l2")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alpha": 1.0}, ValueError, "alpha: expected a value > 1"),
        ({"alpha": 0.5}, ValueError, "alpha: expected a value > 1"),
        ({"lam0": 0.0}, ValueError, "lam0: expected a finite value > 0"),
        ({"lam0": -2.0}, ValueError, "lam0"),
        ({"num_samples": 0}, ValueError, "num_samples: expected an integer >= 1"),
        ({"num_samples": 3.0}, TypeError, "num_samples: expected an integer"),
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
        (None, ValueError, r"index: expected the \(B,\) dataset indices"),
        (
            torch.tensor([0, 1, 2, 10]),
            ValueError,
            r"index: expected values in \[0, num_samples=10\)",
        ),
        (torch.tensor([0, 1, -1, 3]), ValueError, "index: expected values in"),
        (torch.tensor([0, 1, 2]), ValueError, "index: expected 4 labels"),
        (torch.tensor([[0, 1, 2, 3]]), ValueError, "index: expected a 1-D tensor"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "index: expected an integer dtype"),
        ([0, 1, 2, 3], TypeError, "index: expected a torch.Tensor"),
    ],
)
def test_bad_aldr_index_raises(index: object, error: type[Exception], match: str) -> None:
    loss = ALDRKLLoss(10)
    with pytest.raises(error, match=match):
        loss(F, Y, index)  # type: ignore[arg-type]
    assert torch.equal(loss.lambdas, torch.full((10,), 10.0))


def test_bad_noise_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"eta: expected a value in \[0, 1\]"):
        uniform_label_noise(Y, 5, 1.5)
    with pytest.raises(ValueError, match="num_classes: expected an integer >= 2"):
        uniform_label_noise(Y, 1, 0.5)
    with pytest.raises(ValueError, match="y: expected labels in"):
        uniform_label_noise(Y, 3, 0.5)
    with pytest.raises(TypeError, match="y: expected an integer dtype"):
        class_dependent_label_noise(Y.float(), 5, 0.5)
    with pytest.raises(ValueError, match="mapping: expected 5 labels"):
        class_dependent_label_noise(Y, 5, 0.5, mapping=torch.arange(4))


@pytest.mark.parametrize(
    ("lambdas", "error", "match"),
    [
        (torch.full((4,), -1.0), ValueError, "lambdas: expected finite values > 0"),
        (torch.tensor([10.0, 0.0, 10.0, 10.0]), ValueError, "lambdas: expected finite values > 0"),
        (
            torch.tensor([10.0, float("nan"), 10.0, 10.0]),
            ValueError,
            "lambdas: expected finite values > 0",
        ),
        (torch.full((4,), 10), ValueError, r"lambdas: expected a floating tensor of shape \(4,\)"),
        (
            torch.full((3,), 10.0),
            ValueError,
            r"lambdas: expected a floating tensor of shape \(4,\)",
        ),
        ([10.0] * 4, TypeError, r"lambdas: expected a \(4,\) tensor"),
    ],
)
def test_functional_aldr_checks_the_stored_lambdas(
    lambdas: object, error: type[Exception], match: str
) -> None:
    """Negative or zero stored lambdas used to give a silent, meaningless loss."""
    with pytest.raises(error, match=match):
        aldr_kl_loss(torch.randn(4, 5), Y, lambdas)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.randn(4), Y, ValueError, "logits: expected a 2-D tensor"),
        (torch.randn(0, 5), Y[:0], ValueError, "logits: expected a non-empty batch"),
        (
            torch.ones(4, 5, dtype=torch.long),
            Y,
            TypeError,
            "logits: expected a floating-point tensor",
        ),
        (torch.randn(4, 5), torch.tensor([0, 1, 2, 5]), ValueError, "target: expected labels in"),
        (torch.randn(4, 5), Y[:3], ValueError, "target: expected 4 labels"),
        (torch.randn(4, 5), Y.float(), TypeError, "target: expected an integer dtype"),
        (torch.randn(4, 5), torch.full((4, 5), 0.2), ValueError, "soft labels"),
        (torch.full((4, 5), float("nan")), Y, ValueError, "logits: expected finite values"),
        (torch.full((4, 5), float("-inf")), Y, ValueError, "logits: expected finite values"),
    ],
)
def test_comparison_losses_reject_bad_input(
    logits: Tensor, target: Tensor, error: type[Exception], match: str
) -> None:
    for fn in (gce_loss, mae_loss):
        with pytest.raises(error, match=match):
            fn(logits, target)


@pytest.mark.parametrize(
    ("q", "error", "match"),
    [
        (0.0, ValueError, "q: expected a finite value > 0"),
        (-0.5, ValueError, "q: expected a finite value > 0"),
        (1.5, ValueError, r"q: expected a value in \(0, 1\]"),
        (float("nan"), ValueError, "q: expected a finite value"),
        (True, TypeError, "q: expected a real number"),
        ("0.7", TypeError, "q: expected a real number"),
    ],
)
def test_gce_rejects_bad_q(q: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        gce_loss(torch.randn(4, 5), Y, q=q)  # type: ignore[arg-type]


def test_public_helpers_check_their_inputs() -> None:
    """normalize_scores / margin_differences are public: clear errors, one-hot targets accepted."""
    s = torch.randn(4, 5)
    with pytest.raises(ValueError, match="logits: expected a 2-D tensor"):
        normalize_scores(torch.randn(5), "l1")
    with pytest.raises(TypeError, match="logits: expected a torch.Tensor"):
        normalize_scores([[1.0, 2.0]], "l1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="logits: expected a floating-point tensor"):
        normalize_scores(torch.ones(2, 3, dtype=torch.long), "l1")
    with pytest.raises(ValueError, match="scores: expected a 2-D tensor"):
        margin_differences(torch.randn(5), Y, 0.1)
    with pytest.raises(ValueError, match=r"target: expected labels in \[0, 5\)"):
        margin_differences(s, torch.tensor([0, 1, 2, 7]), 0.1)
    with pytest.raises(ValueError, match="margin: expected a finite value >= 0"):
        margin_differences(s, Y, -1.0)
    torch.testing.assert_close(
        margin_differences(s, torch.nn.functional.one_hot(Y, 5), 0.1), margin_differences(s, Y, 0.1)
    )
    z = margin_differences(s, Y, 0.1)
    expected = (s + 0.1 - s.gather(1, Y[:, None])).scatter(1, Y[:, None], 0.0)
    torch.testing.assert_close(z, expected)
