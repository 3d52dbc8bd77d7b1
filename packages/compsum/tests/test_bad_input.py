"""Every bad input of spec section 9 gets a clear error naming the argument."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.compsum import (
    PGD,
    AdvCompSumTrainer,
    CompSumLoss,
    GeneralizedCrossEntropyLoss,
    MAELoss,
    SmoothAdvCompSumLoss,
    TRADESTrainer,
    comp_sum_loss,
    comp_sum_phi,
    logit_differences,
    smooth_adv_comp_sum_loss,
)

H = torch.randn(4, 5)
Y = torch.tensor([0, 1, 2, 4])


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.randn(4), Y, ValueError, r"logits: expected a 2-D tensor"),
        (torch.randn(4, 5, 2), Y, ValueError, r"logits: expected a 2-D tensor"),
        (torch.randn(4, 1), torch.zeros(4, dtype=torch.long), ValueError, r"n >= 2"),
        (torch.randn(0, 5), Y[:0], ValueError, r"logits: expected a non-empty batch"),
        (torch.ones(4, 5, dtype=torch.long), Y, TypeError, r"logits: expected a floating-point"),
        ([[0.0, 1.0]], Y, TypeError, r"logits: expected a torch.Tensor"),
        (H, Y[:3], ValueError, r"target: expected 4 labels"),
        (H, Y[:, None], ValueError, r"target: expected a 1-D tensor"),
        (H, Y.float(), TypeError, r"target: expected an integer dtype"),
        (H, torch.tensor([0, 1, 2, 5]), ValueError, r"target: expected labels in \[0, 5\)"),
        (H, torch.tensor([0, -1, 2, 3]), ValueError, r"target: expected labels in \[0, 5\)"),
        (torch.full((4, 5), float("nan")), Y, ValueError, r"logits: expected finite values"),
        (torch.full((4, 5), float("inf")), Y, ValueError, r"logits: expected finite values"),
    ],
)
def test_loss_inputs(logits: object, target: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        comp_sum_loss(logits, target, 0.5)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        CompSumLoss(1.5)(logits, target)
    with pytest.raises(error, match=match.replace("logits", "logits_clean")):
        smooth_adv_comp_sum_loss(logits, logits, target)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        logit_differences(logits, target)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tau", "error"),
    [
        (-0.1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_tau_must_be_a_finite_non_negative_real(tau: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="tau"):
        comp_sum_loss(H, Y, tau)  # type: ignore[arg-type]
    with pytest.raises(error, match="tau"):
        CompSumLoss(tau)  # type: ignore[arg-type]
    with pytest.raises(error, match="tau"):
        comp_sum_phi(torch.rand(3), tau)  # type: ignore[arg-type]
    with pytest.raises(error, match="tau"):
        SmoothAdvCompSumLoss(tau=tau)  # type: ignore[arg-type]


@pytest.mark.parametrize("nu", [-1.0, float("nan")])
def test_nu_must_be_non_negative(nu: float) -> None:
    with pytest.raises(ValueError, match="nu"):
        smooth_adv_comp_sum_loss(H, H, Y, nu=nu)
    with pytest.raises(ValueError, match="nu"):
        SmoothAdvCompSumLoss(nu=nu)
    with pytest.raises(ValueError, match="nu"):
        AdvCompSumTrainer(nn.Linear(5, 3), nu=nu)


def test_logit_scale_beta_q_scale_reduction_and_weight() -> None:
    with pytest.raises(ValueError, match="logit_scale"):
        smooth_adv_comp_sum_loss(H, H, Y, logit_scale=0.0)
    with pytest.raises(ValueError, match="beta"):
        TRADESTrainer(nn.Linear(5, 3), beta=0.0)
    for q in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="q"):
            GeneralizedCrossEntropyLoss(q)
    with pytest.raises(ValueError, match="scale"):
        MAELoss(scale=3)
    with pytest.raises(ValueError, match="reduction"):
        comp_sum_loss(H, Y, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weight: expected one weight per class"):
        comp_sum_loss(H, Y, 0.5, weight=torch.ones(4))


def test_clean_and_adversarial_logits_of_different_shapes() -> None:
    with pytest.raises(ValueError, match=r"logits_adv: expected the shape of logits_clean"):
        smooth_adv_comp_sum_loss(H, H[:, :4], Y)
    with pytest.raises(ValueError, match=r"logits_adv: expected the shape of logits_clean"):
        smooth_adv_comp_sum_loss(H, H[:3], Y)
    with pytest.raises(ValueError, match=r"logits_adv: expected finite values"):
        smooth_adv_comp_sum_loss(H, torch.full_like(H, float("nan")), Y)
    with pytest.raises(TypeError, match=r"logits_adv: expected a floating-point"):
        smooth_adv_comp_sum_loss(H, H.long(), Y)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"eps": -0.1}, ValueError, "eps"),
        ({"step_size": 0.0}, ValueError, "step_size"),
        ({"steps": -1}, ValueError, "steps"),
        ({"steps": 2.5}, TypeError, "steps"),
        ({"norm": "l1"}, ValueError, "norm"),
        ({"init": "zeros"}, ValueError, "init"),
        ({"clamp": (1.0, 0.0)}, ValueError, "clamp"),
        ({"clamp": (0.5, 0.5)}, ValueError, "clamp"),
        ({"objective": "ce"}, TypeError, "objective"),
        ({"init_std": 0.0}, ValueError, "init_std"),
    ],
)
def test_attack_arguments(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    args: dict[str, object] = {"eps": 0.1, "step_size": 0.01, "steps": 3}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        PGD(**args)  # type: ignore[arg-type]


def test_attack_inputs() -> None:
    model = nn.Linear(5, 3)
    pgd = PGD(0.1, 0.01, 2)
    with pytest.raises(ValueError, match="x: expected a non-empty batch"):
        pgd.perturb(model, torch.rand(0, 5), Y[:0])
    with pytest.raises(ValueError, match="target: expected 4 labels"):
        pgd.perturb(model, torch.rand(4, 5), Y[:2])
    with pytest.raises(TypeError, match="x: expected a floating-point"):
        pgd.perturb(model, torch.ones(4, 5, dtype=torch.long), Y)
    with pytest.raises(ValueError, match="x: expected finite values"):
        pgd.perturb(model, torch.full((4, 5), float("nan")), Y)
    with pytest.raises(TypeError, match="attack"):
        AdvCompSumTrainer(model, attack="pgd")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model"):
        AdvCompSumTrainer("model")  # type: ignore[arg-type]
