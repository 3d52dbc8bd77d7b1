"""The core contract suite on every public loss of paperzoo.ldr."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.testing import LossContractTests
from paperzoo.ldr import (
    ALDRKLLoss,
    CrammerSingerLoss,
    GCELoss,
    LDRKLLoss,
    MAELoss,
    WestonWatkinsLoss,
    aldr_kl_loss,
    crammer_singer_loss,
    gce_loss,
    ldr_kl_loss,
    mae_loss,
    weston_watkins_loss,
)

K = 7


def _logits_and_labels(
    batch: int, dtype: torch.dtype, device: torch.device | str, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    logits = 2.0 * torch.randn(batch, K, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, K, (batch,), generator=generator)
    return logits.to(device, dtype), labels.to(device)


class _TwoInputContract(LossContractTests):
    num_classes = K

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        return _logits_and_labels(batch, dtype, device, generator)


class TestLDRKLLossContract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return LDRKLLoss(lam=2.0, margin=0.1, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return ldr_kl_loss(inputs[0], inputs[1], 2.0, 0.1, reduction=reduction)


class TestLDRKLLossL1Contract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return LDRKLLoss(lam=10.0, normalize="l1", reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return ldr_kl_loss(inputs[0], inputs[1], 10.0, normalize="l1", reduction=reduction)


class TestCrammerSingerLossContract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return CrammerSingerLoss(margin=1.0, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return crammer_singer_loss(inputs[0], inputs[1], 1.0, reduction=reduction)


class TestWestonWatkinsLossContract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return WestonWatkinsLoss(margin=1.0, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return weston_watkins_loss(inputs[0], inputs[1], 1.0, reduction=reduction)


class TestGCELossContract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return GCELoss(q=0.7, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return gce_loss(inputs[0], inputs[1], 0.7, reduction=reduction)


class TestMAELossContract(_TwoInputContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return MAELoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return mae_loss(inputs[0], inputs[1], reduction=reduction)


class TestALDRKLLossContract(LossContractTests):
    """A fresh table per call (make_loss), in eval mode so that repeated calls (gradcheck) see the same
    stored lambdas = lam0; the functional twin gets those. Table writes are tested in test_aldr_kl."""

    num_classes = K
    N = 20

    def make_loss(self, reduction: str) -> nn.Module:
        return ALDRKLLoss(self.N, lam0=10.0, alpha=2.0, reduction=reduction).eval()

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        logits, labels, _ = inputs
        stored = torch.full((logits.shape[0],), 10.0, dtype=torch.float32)
        return aldr_kl_loss(logits, labels, stored, 10.0, 2.0, reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits, labels = _logits_and_labels(batch, dtype, device, generator)
        index = torch.randperm(self.N, generator=generator)[:batch].to(device)
        return logits, labels, index
