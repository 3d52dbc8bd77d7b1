"""The core contract suite on every public loss and layer of paperzoo.hpm."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.hpm import (
    AbsoluteLossPredictionLoss,
    MaskedAutoencoderViT,
    RelativeLossPredictionLoss,
    absolute_loss_prediction_loss,
    random_mask,
    relative_loss_prediction_loss,
)

from .conftest import tiny_model


def _loss_inputs(
    batch: int, dtype: torch.dtype, device: torch.device | str, generator: torch.Generator
) -> tuple[Tensor, ...]:
    pred = torch.randn(batch, 7, generator=generator, dtype=torch.float64)
    target = torch.rand(batch, 7, generator=generator, dtype=torch.float64)
    return pred.to(device, dtype), target.to(device, dtype)


class TestRelativeLossPredictionLossContract(LossContractTests):
    per_example: ClassVar[bool] = False  # reduction="none" gives the (N, M, M) pair matrix

    def make_loss(self, reduction: str) -> nn.Module:
        return RelativeLossPredictionLoss(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return relative_loss_prediction_loss(inputs[0], inputs[1], reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        return _loss_inputs(batch, dtype, device, generator)

    def test_reductions_agree(self) -> None:
        """Overrides the generic check: "mean" is the paper's global normalisation, the sum of
        the pair matrix over the number of *valid* ordered pairs (N*M*(M-1) without ties), not
        the mean over all N*M*M entries of the "none" matrix."""
        inputs = self._inputs()
        none = self._call(inputs, "none")
        n, m = inputs[0].shape
        assert none.shape == (n, m, m)
        torch.testing.assert_close(self._call(inputs, "sum"), none.sum())
        torch.testing.assert_close(self._call(inputs, "mean"), none.sum() / (n * m * (m - 1)))


class TestAbsoluteLossPredictionLossContract(LossContractTests):
    per_example: ClassVar[bool] = False  # reduction="none" gives (N, M)

    def make_loss(self, reduction: str) -> nn.Module:
        return AbsoluteLossPredictionLoss(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return absolute_loss_prediction_loss(inputs[0], inputs[1], reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        return _loss_inputs(batch, dtype, device, generator)


class MaskedForward(nn.Module):
    """The model under a fixed-seed 75 % random mask; output = [reconstruction, predicted loss].

    The contract calls ``layer(x)``; HPM's model also needs a mask, drawn here from a generator
    reseeded on every call so repeated calls (state-dict round trip, CPU vs CUDA) see the same mask.
    Every row gets the same mask, so that a row of a batch and that row alone see the same one
    (the batch-independence test; a mask drawn per row would differ with the batch size).
    """

    def __init__(self) -> None:
        super().__init__()
        self.model: MaskedAutoencoderViT = tiny_model(img_size=4, in_chans=1)

    def reset_parameters(self) -> None:
        self.model.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        gen = torch.Generator().manual_seed(0)
        mask = random_mask(1, self.model.num_patches, 0.75, gen).repeat(x.shape[0], 1)
        mask = mask.to(x.device)
        out = self.model(x, mask)
        assert out.loss_pred_masked is not None
        return torch.cat([out.pred.flatten(1), out.loss_pred_masked], dim=1)


class TestMaskedAutoencoderViTContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return MaskedForward()

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.rand(batch, 1, 4, 4, generator=generator, dtype=torch.float64).to(
            device, dtype
        )
