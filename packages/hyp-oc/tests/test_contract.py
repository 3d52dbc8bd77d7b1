"""The core contract suite on every public loss and layer of paperzoo.hyp_oc."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.hyp_oc import (
    HypCELoss,
    HyperbolicMLR,
    HypPCLoss,
    ToPoincare,
    hyp_ce_loss,
    hyp_pc_loss,
)


class TestHypCELossContract(LossContractTests):
    num_classes: ClassVar[int | None] = 2

    def make_loss(self, reduction: str) -> nn.Module:
        return HypCELoss(reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return hyp_ce_loss(inputs[0], inputs[1], reduction=check_reduction(reduction))

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, 2, generator=generator, dtype=torch.float64)
        target = torch.randint(0, 2, (batch,), generator=generator)
        return logits.to(device, dtype), target.to(device)


class TestHypPCLossContract(LossContractTests):
    # Hyp-PC pairs example i with example i + B/2: a row depends on its partner by definition
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: str) -> nn.Module:
        return HypPCLoss(0.1, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return hyp_pc_loss(inputs[0], 0.1, reduction=check_reduction(reduction))

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        z = torch.randn(batch, 4, generator=generator, dtype=torch.float64) * 0.6
        return (z.to(device, dtype),)

    def bad_shape_inputs(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (inputs[0].unsqueeze(-1),)  # (B, d, 1): not (B, d)

    def test_batch_of_one(self) -> None:
        """Hyp-PC needs a pair: a batch of one is a clear ValueError (spec section 9)."""
        with pytest.raises(ValueError, match="even batch size"):
            self._call(self._inputs(batch=1))

    def test_batch_of_two_is_one_pair(self) -> None:
        z = self._inputs(batch=2)[0]
        out = self._call((z,), "none")
        assert out.shape == (2,) and bool(torch.isfinite(out).all())


class _BallInput:
    batch_size: ClassVar[int] = 4

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        x = torch.randn(batch, 5, generator=generator, dtype=torch.float64) * 0.5
        return x.to(device, dtype)


class TestToPoincareContract(_BallInput, LayerContractTests):
    def make_layer(self) -> nn.Module:
        # riemannian_grad=False: the Riemannian rescaling is by design not the autograd
        # gradient (gradcheck would reject it); it is tested in test_layers.py
        return ToPoincare(0.1, 2.0, learn_base_point=True, dim=5, riemannian_grad=False)


class TestHyperbolicMLRContract(_BallInput, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return HyperbolicMLR(5, 3, c=0.1)
