"""The core contract suite on every public loss and layer of paperzoo.amcl."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.amcl import (
    AMCLInfoNCELoss,
    AMCLMoCoLoss,
    AMCLNTXentLoss,
    MultiHeadProjector,
    PairTemperature,
    amcl_infonce_loss,
    amcl_moco_loss,
    amcl_ntxent_loss,
)
from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests

D = 6


def _temperature() -> PairTemperature:
    torch.manual_seed(0)
    return PairTemperature(D, hidden=8)


class _TwoViews:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        z1 = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        z2 = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        return z1.to(device, dtype), z2.to(device, dtype)

    def test_batch_of_one(self) -> None:
        # overrides the contract: one example has no negatives, so B = 1 is a clear error (spec 9)
        with pytest.raises(ValueError, match="at least 2"):
            self._call(self._inputs(batch=1))  # type: ignore[attr-defined]


class TestAMCLNTXentContract(_TwoViews, LossContractTests):
    # every other example of the batch is a negative: the loss couples the batch by definition
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return AMCLNTXentLoss(_temperature(), beta=0.1, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return amcl_ntxent_loss(inputs[0], inputs[1], _temperature(), beta=0.1, reduction=reduction)


class TestAMCLNTXentMaxContract(_TwoViews, LossContractTests):
    batch_independent: ClassVar[bool] = False  # negatives are the other examples

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return AMCLNTXentLoss(_temperature(), negatives="max", reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return amcl_ntxent_loss(
            inputs[0], inputs[1], _temperature(), negatives="max", reduction=reduction
        )


class TestAMCLInfoNCEContract(_TwoViews, LossContractTests):
    batch_independent: ClassVar[bool] = False  # negatives are the other examples

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return AMCLInfoNCELoss(_temperature(), reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return amcl_infonce_loss(inputs[0], inputs[1], _temperature(), reduction=reduction)


class TestAMCLMoCoContract(LossContractTests):
    # the negatives come from the queue, not the batch: each query's loss is its own

    def make_loss(self, reduction: Reduction) -> nn.Module:
        loss = AMCLMoCoLoss(_temperature(), dim=D, num_heads=1, queue_size=5, reduction=reduction)
        loss.queue.copy_(self._queue())
        return loss

    @staticmethod
    def _queue() -> Tensor:
        return torch.randn(1, 5, D, generator=torch.Generator().manual_seed(3))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        q = inputs[0]
        return amcl_moco_loss(
            q, inputs[1], self._queue().to(q.dtype), _temperature(), reduction=reduction
        )

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        q = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        k = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        return q.to(device, dtype), k.to(device, dtype)


class _HeadsBatchFirst(nn.Module):
    """Test adapter: the projector's ``(C, B, d')`` output as ``(B, C, d')`` (the suite indexes rows
    on the first axis)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = MultiHeadProjector(5, out_dim=4, num_heads=3, hidden=7)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).transpose(0, 1)


class TestMultiHeadProjectorContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return _HeadsBatchFirst()

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 5, generator=generator, dtype=torch.float64).to(device, dtype)


class _PairOnConcat(nn.Module):
    """Test adapter: ``x (B, 2d')`` split into the pair ``(u, v)``; output ``tau (B,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.temp = PairTemperature(D, hidden=8, num_heads=2, shared=False)

    def reset_parameters(self) -> None:
        self.temp.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != 2 * D or x.shape[0] == 0:
            raise ValueError(f"x: expected (B >= 1, {2 * D}), got {tuple(x.shape)}")
        return self.temp(x[:, :D], x[:, D:], head=1)


class TestPairTemperatureContract(LayerContractTests):
    # the temperature network sits behind the losses, which check features for NaN/inf
    checks_nonfinite: ClassVar[bool] = False

    def make_layer(self) -> nn.Module:
        return _PairOnConcat()

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 2 * D, generator=generator, dtype=torch.float64).to(device, dtype)
