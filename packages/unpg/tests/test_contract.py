"""The core contract suite on every public loss and layer of paperzoo.unpg."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.unpg import ArcFaceHead, CosFaceHead, UNPGLoss, unpg_cross_entropy, unpg_loss

D, C = 5, 4

pytestmark = pytest.mark.filterwarnings("ignore:UNPG. a batch of fewer than 2:RuntimeWarning")


def _head(kind: str, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    head = ArcFaceHead(D, C) if kind == "arc" else CosFaceHead(D, C)
    return head.to(dtype)


class _FollowDtype(nn.Module):
    """UNPGLoss whose head follows the input dtype (the suite builds losses before inputs)."""

    def __init__(self, loss: UNPGLoss) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.is_floating_point():
            self.loss.head.to(x.dtype)
        return self.loss(x, y)  # type: ignore[no-any-return]


class _UNPGInputs:
    num_classes: ClassVar[int | None] = C
    batch_size: ClassVar[int] = 8
    # the in-batch negatives are shared by every row: example i's loss depends on the batch
    batch_independent: ClassVar[bool] = False
    kind: ClassVar[str] = "arc"
    whisker: ClassVar[float] = 1.5

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        x = torch.randn(batch, D, generator=generator, dtype=torch.float64)
        y = torch.randint(0, C, (batch,), generator=generator)
        return x.to(device, dtype), y.to(device)

    def make_loss(self, reduction: Reduction) -> nn.Module:
        loss = UNPGLoss(
            _head(self.kind, torch.float64), scale=8.0, whisker=self.whisker, reduction=reduction
        )
        return _FollowDtype(loss)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        head = _head(self.kind, inputs[0].dtype)
        return unpg_loss(
            inputs[0], inputs[1], head, scale=8.0, whisker=self.whisker, reduction=reduction
        )


class TestUNPGArcFaceContract(_UNPGInputs, LossContractTests):
    pass


class TestUNPGCosFaceNoFilterContract(_UNPGInputs, LossContractTests):
    kind = "cos"
    whisker = math.inf


class _CrossEntropy(nn.Module):
    def __init__(self, reduction: Reduction) -> None:
        super().__init__()
        self.reduction: Reduction = reduction

    def forward(self, logits: Tensor, y: Tensor, extra: Tensor) -> Tensor:
        return unpg_cross_entropy(logits, y, extra, scale=4.0, reduction=self.reduction)


class TestUNPGCrossEntropyContract(LossContractTests):
    """With the extra negatives fixed, each row is that example's own loss."""

    num_classes = C

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.rand(batch, C, generator=generator, dtype=torch.float64) * 2 - 1
        y = torch.randint(0, C, (batch,), generator=generator)
        extra = torch.rand(7, generator=generator, dtype=torch.float64) * 2 - 1
        return logits.to(device, dtype), y.to(device), extra.to(device, dtype)

    def example_inputs(self, inputs: tuple[Tensor, ...], i: int) -> tuple[Tensor, ...]:
        return inputs[0][i : i + 1], inputs[1][i : i + 1], inputs[2]

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return _CrossEntropy(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return unpg_cross_entropy(*inputs, scale=4.0, reduction=reduction)


class _HeadLayer:
    kind: ClassVar[str] = "arc"

    def make_layer(self) -> nn.Module:
        return ArcFaceHead(D, C) if self.kind == "arc" else CosFaceHead(D, C)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, D, generator=generator, dtype=torch.float64).to(device, dtype)


class TestArcFaceHeadContract(_HeadLayer, LayerContractTests):
    pass


class TestCosFaceHeadContract(_HeadLayer, LayerContractTests):
    kind = "cos"
