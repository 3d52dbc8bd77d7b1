"""Correctness of the relative and absolute loss-prediction objectives (spec section 5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.hpm import (
    AbsoluteLossPredictionLoss,
    RelativeLossPredictionLoss,
    absolute_loss_prediction_loss,
    relative_loss_prediction_loss,
)


def _loop_relative(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Slow, obviously-correct reference: a double loop over ordered pairs of each image."""
    total = torch.zeros((), dtype=pred.dtype)
    count = 0
    n, m = pred.shape
    for b in range(n):
        for i in range(m):
            for j in range(m):
                if i == j or target[b, i] == target[b, j]:
                    continue
                label = torch.tensor(1.0 if target[b, j] > target[b, i] else 0.0, dtype=pred.dtype)
                total = total + F.binary_cross_entropy_with_logits(pred[b, j] - pred[b, i], label)
                count += 1
    return total / count


def _reference_eps_form(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The official code's formula, -log(sigmoid(x) + 1e-6), written out independently."""
    pos = (target.unsqueeze(1) > target.unsqueeze(2)).to(pred.dtype)
    neg = (target.unsqueeze(1) < target.unsqueeze(2)).to(pred.dtype)
    x = pred.unsqueeze(1) - pred.unsqueeze(2)
    loss = -pos * torch.log(torch.sigmoid(x) + 1e-6) - neg * torch.log(1 - torch.sigmoid(x) + 1e-6)
    return loss.sum() / (pos + neg).sum()


def test_two_patch_hand_value() -> None:
    loss = relative_loss_prediction_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.1, 0.5]]))
    assert loss.item() == pytest.approx(0.3132616875182228, abs=1e-7)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1))), abs=1e-7)


def test_three_patch_hand_value_counts_six_pairs() -> None:
    pred = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([[0.3, 0.1, 0.2]], dtype=torch.float64)
    loss = relative_loss_prediction_loss(pred, target)
    assert loss.item() == pytest.approx(1.2511504620264724, abs=1e-12)
    pairs = relative_loss_prediction_loss(pred, target, reduction="none")
    assert (pairs > 0).sum().item() == 6


def test_tied_targets_are_excluded_from_the_count() -> None:
    pred = torch.tensor([[0.2, -0.4, 0.9]], dtype=torch.float64)
    target = torch.tensor([[1.0, 1.0, 2.0]], dtype=torch.float64)
    total = relative_loss_prediction_loss(pred, target, reduction="sum")
    mean = relative_loss_prediction_loss(pred, target)
    assert mean.item() == pytest.approx(total.item() / 4)
    pairs = relative_loss_prediction_loss(pred, target, reduction="none")
    assert pairs[0, 0, 1] == 0 and pairs[0, 1, 0] == 0


def test_all_tied_target_gives_zero_loss_and_finite_grad() -> None:
    pred = torch.randn(3, 5, requires_grad=True)
    loss = relative_loss_prediction_loss(pred, torch.ones(3, 5))
    loss.backward()
    assert loss.item() == 0.0
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_shift_of_pred_and_monotone_map_of_target_leave_loss_unchanged() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 9, generator=g, dtype=torch.float64)
    target = torch.rand(4, 9, generator=g, dtype=torch.float64)
    base = relative_loss_prediction_loss(pred, target)
    shift = torch.randn(4, 1, generator=g, dtype=torch.float64) * 10
    assert torch.allclose(relative_loss_prediction_loss(pred + shift, target), base, atol=1e-12)
    for fn in (lambda t: torch.exp(3 * t), lambda t: 5 * t + 2):
        assert torch.allclose(relative_loss_prediction_loss(pred, fn(target)), base, atol=1e-12)


def test_vectorised_relative_loss_equals_pairwise_loop() -> None:
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 7, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (3, 7), generator=g).double()  # with ties
    assert torch.allclose(
        relative_loss_prediction_loss(pred, target), _loop_relative(pred, target), atol=1e-12
    )


def test_relative_loss_matches_reference_eps_form() -> None:
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(8, 37, generator=g)
    target = torch.rand(8, 37, generator=g)
    ours = relative_loss_prediction_loss(pred, target)
    assert torch.allclose(ours, _reference_eps_form(pred, target), atol=1e-5)


def test_ordered_predictions_drive_loss_to_zero_and_reversed_grow_linearly() -> None:
    target = torch.tensor([[0.1, 0.4, 0.2, 0.9]], dtype=torch.float64)
    right = [relative_loss_prediction_loss(k * target, target).item() for k in (1, 10, 100, 1000)]
    assert right == sorted(right, reverse=True) and right[-1] < 1e-12
    wrong = [relative_loss_prediction_loss(-k * target, target).item() for k in (100, 200)]
    assert wrong[1] / wrong[0] == pytest.approx(2.0, rel=1e-3)


def test_relative_loss_prefers_the_right_order() -> None:
    target = torch.tensor([[0.1, 0.5, 0.3]])
    good = relative_loss_prediction_loss(torch.tensor([[0.0, 2.0, 1.0]]), target)
    bad = relative_loss_prediction_loss(torch.tensor([[2.0, 0.0, 1.0]]), target)
    assert good < bad


def test_relative_loss_target_receives_no_gradient() -> None:
    pred = torch.randn(2, 5, requires_grad=True)
    target = torch.rand(2, 5, requires_grad=True)
    relative_loss_prediction_loss(pred, target).backward()
    assert target.grad is None
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_valid_mask_drops_patches_from_every_pair() -> None:
    g = torch.Generator().manual_seed(3)
    pred = torch.randn(2, 6, generator=g, dtype=torch.float64)
    target = torch.rand(2, 6, generator=g, dtype=torch.float64)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[:, 4:] = False
    masked = relative_loss_prediction_loss(pred, target, valid)
    assert torch.allclose(masked, relative_loss_prediction_loss(pred[:, :4], target[:, :4]))


def test_reductions_are_consistent() -> None:
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(3, 6, generator=g, dtype=torch.float64)
    target = torch.rand(3, 6, generator=g, dtype=torch.float64)
    none = relative_loss_prediction_loss(pred, target, reduction="none")
    assert none.shape == (3, 6, 6)
    assert torch.allclose(none.sum(), relative_loss_prediction_loss(pred, target, reduction="sum"))
    assert torch.allclose(none.sum() / 90, relative_loss_prediction_loss(pred, target))


def test_gradcheck_relative_and_absolute_float64() -> None:
    g = torch.Generator().manual_seed(5)
    pred = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: relative_loss_prediction_loss(p, target), (pred,))
    assert torch.autograd.gradcheck(lambda p: absolute_loss_prediction_loss(p, target), (pred,))


def test_absolute_loss_is_zero_at_standardised_target() -> None:
    target = torch.rand(3, 8, dtype=torch.float64)
    std = (target - target.mean(1, keepdim=True)) / torch.sqrt(target.var(1, keepdim=True) + 1e-6)
    assert absolute_loss_prediction_loss(std, target).item() == pytest.approx(0.0, abs=1e-20)
    assert absolute_loss_prediction_loss(std + 1, target).item() == pytest.approx(1.0)


def test_modules_equal_functions() -> None:
    pred, target = torch.randn(2, 5), torch.rand(2, 5)
    for red in ("mean", "sum", "none"):
        assert torch.equal(
            RelativeLossPredictionLoss(red)(pred, target),
            relative_loss_prediction_loss(pred, target, reduction=red),
        )
        assert torch.equal(
            AbsoluteLossPredictionLoss(red)(pred, target),
            absolute_loss_prediction_loss(pred, target, reduction=red),
        )


@pytest.mark.parametrize("fn", [relative_loss_prediction_loss, absolute_loss_prediction_loss])
def test_bad_inputs_raise_naming_the_argument(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    with pytest.raises(ValueError, match="pred, target"):
        f(torch.randn(2, 5), torch.rand(2, 4))  # type: ignore[operator]
    with pytest.raises(ValueError, match="target"):
        f(torch.randn(2, 5), torch.tensor([[0.1, float("nan"), 0, 0, 0]] * 2))  # type: ignore[operator]
    with pytest.raises(ValueError, match="pred"):
        f(torch.tensor([[float("inf"), 0, 0, 0, 0]] * 2), torch.rand(2, 5))  # type: ignore[operator]
    with pytest.raises(ValueError, match="non-empty"):
        f(torch.randn(0, 5), torch.rand(0, 5))  # type: ignore[operator]
    with pytest.raises(ValueError, match="reduction"):
        f(torch.randn(2, 5), torch.rand(2, 5), reduction="avg")  # type: ignore[operator]
    with pytest.raises(TypeError, match="pred"):
        f(torch.ones(2, 5, dtype=torch.long), torch.rand(2, 5))  # type: ignore[operator]
    with pytest.raises(ValueError, match="reduction"):
        RelativeLossPredictionLoss("avg")
    with pytest.raises(TypeError, match="target"):
        f(torch.randn(2, 5), torch.rand(2, 5) > 0.5)  # type: ignore[operator]
    with pytest.raises(ValueError, match="target: expected it on pred's device"):
        f(torch.randn(2, 5), torch.rand(2, 5, device="meta"))  # type: ignore[operator]
    # integer per-patch losses (e.g. ranks) are fine: only their order matters
    assert torch.isfinite(f(torch.randn(2, 5), torch.arange(10).view(2, 5)))  # type: ignore[operator]


def test_relative_valid_mask_must_be_bool_of_same_shape() -> None:
    with pytest.raises(ValueError, match="valid: expected it on pred's device"):
        relative_loss_prediction_loss(
            torch.randn(2, 5), torch.rand(2, 5), torch.ones(2, 5, dtype=torch.bool, device="meta")
        )
    with pytest.raises(TypeError, match="valid"):
        relative_loss_prediction_loss(torch.randn(2, 5), torch.rand(2, 5), torch.ones(2, 5))
    with pytest.raises(ValueError, match="valid"):
        relative_loss_prediction_loss(
            torch.randn(2, 5), torch.rand(2, 5), torch.ones(2, 4, dtype=torch.bool)
        )
