"""The core contract suite on every public loss of paperzoo.ensloss."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LossContractTests
from paperzoo.ensloss import (
    EnsLoss,
    ExponentialLoss,
    HingeLoss,
    ensloss,
    ensloss_derivatives,
    exponential_loss,
    hinge_loss,
)


class _BinaryInputs:
    num_classes: ClassVar[int | None] = 2  # targets in {0, 1}: a 2 is out of range

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = 2.0 * torch.randn(batch, generator=generator, dtype=torch.float64)
        target = torch.randint(0, 2, (batch,), generator=generator)
        return logits.to(device, dtype), target.to(device)


class TestHingeLossContract(_BinaryInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return HingeLoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return hinge_loss(inputs[0], inputs[1], reduction=reduction)


class TestExponentialLossContract(_BinaryInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return ExponentialLoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return exponential_loss(inputs[0], inputs[1], reduction=reduction)


def _gen(like: Tensor) -> torch.Generator:
    return torch.Generator(device=like.device).manual_seed(0)


class _SeededEnsLoss(nn.Module):
    """Test adapter: EnsLoss with a generator seeded afresh on each call's device, so every call
    on the same inputs draws the same random loss (the contract compares calls)."""

    def __init__(self, reduction: Reduction) -> None:
        super().__init__()
        self.reduction: Reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        out: Tensor = EnsLoss(generator=_gen(logits), reduction=self.reduction)(logits, target)
        return out


class TestEnsLossContract(_BinaryInputs, LossContractTests):
    # The rank matching gives the example with the r-th smallest margin the r-th smallest random
    # derivative of the batch: example i's term depends on every margin of the batch by definition.
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return _SeededEnsLoss(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return ensloss(inputs[0], inputs[1], generator=_gen(inputs[0]), reduction=reduction)

    def test_gradcheck_float64(self) -> None:
        """Overridden: the surrogate's derivatives are constants by design (detached), and its
        tail factor ``1/z`` and ranks move with a finite-difference step, so a numerical gradient
        is not the update EnsLoss defines. What it defines is checked instead: the gradient of the
        sum is exactly ``g * y`` for the derivatives ``g`` of those margins."""
        logits, target = self._inputs(batch=4)
        x = logits.detach().clone().requires_grad_(True)
        self.make_loss("sum")(x, target).backward()
        y = 2.0 * target.double() - 1.0
        g = ensloss_derivatives(y * logits, generator=_gen(logits))
        assert x.grad is not None
        torch.testing.assert_close(x.grad, g * y, rtol=0, atol=1e-15)

    def test_terms_depend_on_the_rest_of_the_batch(self) -> None:
        """Why ``batch_independent`` is False: the same example gets another derivative when a
        smaller-margin example joins the batch (the ranks shift)."""
        logits = torch.tensor([0.3, -0.2], dtype=torch.float64)
        target = torch.tensor([1, 1])
        alone = EnsLoss(generator=_gen(logits), reduction="none")(logits[:1], target[:1])
        both = EnsLoss(generator=_gen(logits), reduction="none")(logits, target)
        assert not torch.equal(alone, both[:1])


@pytest.mark.gpu
def test_ensloss_runs_on_cuda_with_a_cuda_generator() -> None:
    x = torch.randn(128, device="cuda")
    t = torch.randint(0, 2, (128,), device="cuda")
    out = ensloss(x, t, generator=torch.Generator(device="cuda").manual_seed(0), validate=False)
    assert out.device.type == "cuda" and bool(torch.isfinite(out))
