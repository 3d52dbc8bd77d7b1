"""The core contract suite on every public loss of paperzoo.anyloss.

AnyLoss and its relatives are batch-level losses: one value of the batch's (soft) confusion
matrix, so they offer only ``reduction='mean'`` and raise on ``'none'``/``'sum'`` (tested in
``test_reductions_agree`` below). The suite's other checks call ``'none'``/``'sum'`` to compare
dtypes, devices and batch sizes; for these losses ``_call`` reads the one batch value instead.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.anyloss import (
    AnyLoss,
    HybridAnyLoss,
    OneVsRestAnyLoss,
    WeightedBCELoss,
    anyloss,
    hybrid_anyloss,
    one_vs_rest_anyloss,
    weighted_bce,
)
from paperzoo.core.testing import LossContractTests


def _binary_target(batch: int, generator: torch.Generator) -> Tensor:
    y = torch.randint(0, 2, (batch,), generator=generator)
    if batch >= 2:  # both classes present, so every metric is defined
        y[0], y[1] = 0, 1
    return y


class _BinaryInputs:
    num_classes: ClassVar[int | None] = 2

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, generator=generator, dtype=torch.float64)
        return logits.to(device, dtype), _binary_target(batch, generator).to(device)


class _BatchLevel(LossContractTests):
    per_example: ClassVar[bool] = False
    reductions: ClassVar[tuple[str, ...]] = ("mean",)
    # one value of the batch's confusion matrix: examples are coupled by definition
    batch_independent: ClassVar[bool] = False

    def build(self, reduction: str) -> nn.Module:
        """The loss as a user builds it (raises on 'none' / 'sum')."""
        raise NotImplementedError

    def make_loss(self, reduction: str) -> nn.Module:
        """For the suite: 'none' and 'sum' read the one batch value ('mean')."""
        return self.build("mean" if reduction in ("none", "sum") else reduction)

    def test_reductions_agree(self) -> None:
        """Overridden: 'none' and 'sum' raise a ValueError naming ``reduction``; 'mean' is 0-D."""
        for red in ("none", "sum"):
            with pytest.raises(ValueError, match="reduction"):
                self.build(red)
        assert self._call(self._inputs()).dim() == 0


class TestAnyLossF1Contract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        return AnyLoss("f1", reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, "f1", reduction=reduction)  # type: ignore[arg-type]


class TestAnyLossFBetaContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        return AnyLoss("fbeta", beta=2.0, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, "fbeta", beta=2.0, reduction=reduction)  # type: ignore[arg-type]


class TestAnyLossAccuracyContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        return AnyLoss("accuracy", reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, "accuracy", reduction=reduction)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::paperzoo.anyloss.DegenerateBatchWarning")  # batch of one
class TestAnyLossGMeanContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        # L = 5: at L = 73 a random 4-row batch can sit where TP·TN/(n1 n0) < eps, where the
        # G-mean's gradient is clamped to 0 by design (the gradcheck at L = 73 is in test_losses)
        return AnyLoss("gmean", L=5.0, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, "gmean", L=5.0, reduction=reduction)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::paperzoo.anyloss.DegenerateBatchWarning")  # batch of one
class TestAnyLossBalancedAccuracyContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        return AnyLoss("balanced_accuracy", L=5.0, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, "balanced_accuracy", L=5.0, reduction=reduction)  # type: ignore[arg-type]


def _jaccard(tn: Tensor, fp: Tensor, fn: Tensor, tp: Tensor) -> Tensor:
    return tp / (tp + fp + fn)


class TestAnyLossCallableContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        return AnyLoss(_jaccard, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return anyloss(*inputs, _jaccard, reduction=reduction)  # type: ignore[arg-type]


class TestHybridAnyLossContract(_BinaryInputs, _BatchLevel):
    def build(self, reduction: str) -> nn.Module:
        if reduction != "mean":
            raise ValueError(f"reduction: HybridAnyLoss is batch-level, got {reduction!r}")
        return HybridAnyLoss("f1", r=0.3)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return hybrid_anyloss(*inputs, "f1", r=0.3)


class TestWeightedBCEContract(_BinaryInputs, LossContractTests):
    # the class weights are the batch's class shares, so rows are not batch independent
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: str) -> nn.Module:
        return WeightedBCELoss(reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return weighted_bce(*inputs, reduction=reduction)  # type: ignore[arg-type]


class TestOneVsRestContract(_BatchLevel):
    num_classes: ClassVar[int | None] = 3

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, 3, generator=generator, dtype=torch.float64)
        y = torch.arange(batch) % 3  # every class present from batch 3 on
        return logits.to(device, dtype), y[torch.randperm(batch, generator=generator)].to(device)

    def build(self, reduction: str) -> nn.Module:
        if reduction != "mean":
            raise ValueError(f"reduction: OneVsRestAnyLoss is batch-level, got {reduction!r}")
        return OneVsRestAnyLoss("f1", 3, L=10.0)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return one_vs_rest_anyloss(*inputs, "f1", num_classes=3, L=10.0)
