"""The core contract suite on every public loss of paperzoo.compsum."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.compsum import (
    CompSumLoss,
    GeneralizedCrossEntropyLoss,
    MAELoss,
    SmoothAdvCompSumLoss,
    SumExponentialLoss,
    comp_sum_loss,
    generalized_cross_entropy_loss,
    mae_loss,
    smooth_adv_comp_sum_loss,
    sum_exponential_loss,
)
from paperzoo.core.testing import LossContractTests

N = 7


class _Inputs:
    num_classes: ClassVar[int | None] = N

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, N, generator=generator, dtype=torch.float64)
        target = torch.randint(0, N, (batch,), generator=generator)
        return logits.to(device, dtype), target.to(device)


class TestSumExponentialTau0Contract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return SumExponentialLoss(reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return sum_exponential_loss(inputs[0], inputs[1], reduction=reduction)  # type: ignore[arg-type]


class TestCompSumTauHalfContract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return CompSumLoss(0.5, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return comp_sum_loss(inputs[0], inputs[1], 0.5, reduction=reduction)  # type: ignore[arg-type]


class TestCompSumCrossEntropyContract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return CompSumLoss(1.0, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return comp_sum_loss(inputs[0], inputs[1], 1.0, reduction=reduction)  # type: ignore[arg-type]


class TestCompSumTau3Contract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return CompSumLoss(3.0, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return comp_sum_loss(inputs[0], inputs[1], 3.0, reduction=reduction)  # type: ignore[arg-type]


class TestGeneralizedCrossEntropyContract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return GeneralizedCrossEntropyLoss(0.5, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return generalized_cross_entropy_loss(inputs[0], inputs[1], 0.5, reduction=reduction)  # type: ignore[arg-type]


class TestMAEScale2Contract(_Inputs, LossContractTests):
    def make_loss(self, reduction: str) -> nn.Module:
        return MAELoss(reduction=reduction, scale=2)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return mae_loss(inputs[0], inputs[1], reduction=reduction, scale=2)  # type: ignore[arg-type]


class _AdvAdapter(nn.Module):
    """Test adapter: the contract passes ``(logits_clean, target, logits_adv)`` (labels second)."""

    def __init__(self, reduction: str) -> None:
        super().__init__()
        self.loss = SmoothAdvCompSumLoss(tau=1.5, nu=0.5, reduction=reduction)  # type: ignore[arg-type]

    def forward(self, clean: Tensor, target: Tensor, adv: Tensor) -> Tensor:
        return self.loss(clean, adv, target)  # type: ignore[no-any-return]


class TestSmoothAdvCompSumContract(_Inputs, LossContractTests):
    """Gradients flow to the clean logits with the perturbed logits fixed (spec: ``x'`` fixed)."""

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        clean, target = super().make_inputs(batch, dtype=dtype, device=device, generator=generator)
        adv = clean + torch.randn(batch, N, generator=generator, dtype=torch.float64).to(
            device, dtype
        )
        return clean, target, adv

    def make_loss(self, reduction: str) -> nn.Module:
        return _AdvAdapter(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return smooth_adv_comp_sum_loss(
            inputs[0],
            inputs[2],
            inputs[1],
            1.5,
            0.5,
            reduction=reduction,  # type: ignore[arg-type]
        )
