"""The core contract suite on every public loss and layer of paperzoo.dhkd."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.models import mlp
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.dhkd import (
    BinaryKLLoss,
    BinaryKLNormLoss,
    DualHeadClassifier,
    KDLoss,
    NonLinearHead,
    binary_kl,
    binary_kl_norm,
    kd_loss,
)

K = 7


class _PairInputs:
    """(student logits, teacher logits), both (N, K); inputs[1] holds no labels."""

    num_classes: ClassVar[int | None] = None

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        zs = 3 * torch.randn(batch, K, generator=generator, dtype=torch.float64)
        zt = 3 * torch.randn(batch, K, generator=generator, dtype=torch.float64)
        return zs.to(device, dtype), zt.to(device, dtype)


class TestBinaryKLNormContract(_PairInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return BinaryKLNormLoss(2.0, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return binary_kl_norm(inputs[0], inputs[1], 2.0, reduction)


class TestBinaryKLContract(_PairInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return BinaryKLLoss(2.0, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return binary_kl(inputs[0], inputs[1], 2.0, reduction)


class TestKDContract(_PairInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return KDLoss(4.0, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return kd_loss(inputs[0], inputs[1], 4.0, reduction)


class _DualHeadInputs:
    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 6, generator=generator, dtype=torch.float64).to(device, dtype)


class TestDualHeadLinearContract(_DualHeadInputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return DualHeadClassifier(nn.Sequential(mlp([6, 8]), nn.ReLU()), 8, K, "linear")


class TestDualHeadNonLinearContract(_DualHeadInputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        # return_both: the contract reads output[0] (the main head) and also runs the aux head
        return DualHeadClassifier(
            nn.Sequential(mlp([6, 8]), nn.ReLU()), 8, K, "nonlinear", return_both=True
        )


class TestNonLinearHeadContract(_DualHeadInputs, LayerContractTests):
    checks_nonfinite = False  # a plain head: the DualHeadClassifier checks its input

    def make_layer(self) -> nn.Module:
        # dropout off: gradcheck needs a deterministic function (the dropout is torch's own)
        return NonLinearHead(6, K, dropout=0.0)
