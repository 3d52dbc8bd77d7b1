"""The core contract suite on every public loss of paperzoo.ood_dro."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_reduction, reduce
from paperzoo.core.testing import LossContractTests
from paperzoo.ood_dro import (
    LinearRobustLoss,
    RampLoss,
    WassersteinRobustLoss,
    ramp_loss,
    robust_hinge_linear,
    robust_logistic_linear,
    robust_surrogate,
    robust_zero_one_linear,
)

FUNCTIONS = {
    "hinge": robust_hinge_linear,
    "zero_one": robust_zero_one_linear,
    "logistic": robust_logistic_linear,
}


class _MarginInputs:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        margin = 2 * torch.randn(batch, generator=generator, dtype=torch.float64)
        w_norm = 0.5 + torch.rand(batch, generator=generator, dtype=torch.float64)
        return margin.to(device, dtype), w_norm.to(device, dtype)


class _LinearRobust(_MarginInputs, LossContractTests):
    kind: ClassVar[str] = "logistic"

    def make_loss(self, reduction: str) -> nn.Module:
        return LinearRobustLoss(self.kind, gamma=1.0, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return reduce(FUNCTIONS[self.kind](inputs[0], inputs[1], 1.0), check_reduction(reduction))


class TestRobustHingeLinearContract(_LinearRobust):
    kind = "hinge"


class TestRobustZeroOneLinearContract(_LinearRobust):
    kind = "zero_one"


class TestRobustLogisticLinearContract(_LinearRobust):
    kind = "logistic"


class TestRampLossContract(LossContractTests):
    num_classes: ClassVar[int | None] = 2  # labels are {-1, +1}: 2 is out of range too

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        scores = 0.4 * torch.randn(batch, generator=generator, dtype=torch.float64)
        target = torch.randint(0, 2, (batch,), generator=generator) * 2 - 1
        return scores.to(device, dtype), target.to(device)

    def make_loss(self, reduction: str) -> nn.Module:
        return RampLoss(scale=2.0, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        s, t = inputs
        return reduce(ramp_loss(t.to(s.dtype) * s, 2.0), check_reduction(reduction))


GAMMA, STEPS = 2.0, 30
STEP = 0.2  # contraction about 0.2 per step: converged to float64 precision in 30


def _model(like: Tensor) -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3).to(like.device, like.dtype)


class _RobustOnFixedModel(nn.Module):
    """Test adapter: the robust loss of a seeded linear model built for the inputs' dtype, as a
    loss of ``(x, y)``; a converged ascent (constant step, gamma above the
    smoothness threshold; 30 steps at 0.2) so its envelope gradient in ``x`` is the true one."""

    def __init__(self, reduction: str) -> None:
        super().__init__()
        self.loss = WassersteinRobustLoss(
            "ce",
            GAMMA,
            steps=STEPS,
            step_size=STEP,
            schedule="constant",
            reduction=check_reduction(reduction),
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out: Tensor = self.loss(_model(x), x, y)
        return out


class TestWassersteinRobustLossContract(LossContractTests):
    num_classes: ClassVar[int | None] = 3

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        x = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 3, (batch,), generator=generator)
        return x.to(device, dtype), y.to(device)

    def make_loss(self, reduction: str) -> nn.Module:
        return _RobustOnFixedModel(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        x, y = inputs
        phi, _ = robust_surrogate(
            _model(x), x, y, "ce", GAMMA, steps=STEPS, step_size=STEP, schedule="constant"
        )
        return reduce(phi, check_reduction(reduction))
