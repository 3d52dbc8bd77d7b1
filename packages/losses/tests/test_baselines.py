"""Focal loss: the contract suite, a slow per-example reference in float64, limiting cases."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_reduction
from paperzoo.core.testing import LossContractTests
from paperzoo.losses import FocalLoss, focal_loss

K = 5


class TestFocalContract(LossContractTests):
    num_classes: ClassVar[int | None] = K

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, K, generator=generator, dtype=torch.float64)
        target = torch.randint(0, K, (batch,), generator=generator)
        return logits.to(device, dtype), target.to(device)

    def make_loss(self, reduction: str) -> nn.Module:
        return FocalLoss(gamma=1.5, reduction=check_reduction(reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return focal_loss(inputs[0], inputs[1], 1.5, check_reduction(reduction))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_matches_a_per_example_loop(gamma: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(9, K, generator=g, dtype=torch.float64)
    target = torch.randint(0, K, (9,), generator=g)
    got = focal_loss(logits, target, gamma, "none")
    for i in range(9):
        z = [float(v) for v in logits[i]]
        p = math.exp(z[int(target[i])]) / sum(math.exp(v) for v in z)
        want = -((1 - p) ** gamma) * math.log(p)
        assert float(got[i]) == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_gamma_zero_is_cross_entropy() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, K, generator=g, dtype=torch.float64)
    target = torch.randint(0, K, (16,), generator=g)
    torch.testing.assert_close(
        focal_loss(logits, target, 0.0), nn.functional.cross_entropy(logits, target)
    )


def test_focal_down_weights_easy_examples() -> None:
    logits = torch.tensor([[8.0, 0.0], [0.2, 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 0])
    ce = nn.functional.cross_entropy(logits, target, reduction="none")
    fl = focal_loss(logits, target, 2.0, "none")
    assert float(fl[0] / ce[0]) < 1e-6 < float(fl[1] / ce[1])


def test_negative_gamma_is_rejected() -> None:
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
