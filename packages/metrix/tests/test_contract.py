"""The core contract suite for every public loss of the package."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LossContractTests
from paperzoo.metrix import (
    GenericPairLoss,
    ProxyAnchorGeneric,
    contrastive_generic,
    generic_pair_loss,
    multi_similarity_generic,
    proxy_anchor_generic,
)


class _PairContract(LossContractTests):
    """Anchors (A, D) against a fixed candidate set (A + 3, D): each anchor's row depends on that
    anchor, its row of ``y``/``valid`` and the shared candidates only, so rows are independent."""

    def form(self, reduction: Reduction) -> GenericPairLoss:
        raise NotImplementedError

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return self.form(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        f = self.form(reduction)
        return generic_pair_loss(
            *inputs,
            rho_pos=f.rho_pos,
            rho_neg=f.rho_neg,
            sigma_pos=f.sigma_pos,
            sigma_neg=f.sigma_neg,
            tau=f.tau,
            similarity=f.similarity,
            reduction=reduction,
        )

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        m = self.batch_size + 3
        a = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
        c = torch.randn(m, 4, generator=generator, dtype=torch.float64)
        y = torch.rand(batch, m, generator=generator, dtype=torch.float64)
        valid = torch.rand(batch, m, generator=generator) > 0.2
        return a.to(device, dtype), c.to(device, dtype), y.to(device, dtype), valid.to(device)


class TestContrastiveGenericContract(_PairContract):
    def form(self, reduction: Reduction) -> GenericPairLoss:
        return contrastive_generic(reduction=reduction)


class TestMultiSimilarityGenericContract(_PairContract):
    def form(self, reduction: Reduction) -> GenericPairLoss:
        return multi_similarity_generic(reduction=reduction)


class TestProxyAnchorGenericContract(LossContractTests):
    num_classes = 5
    per_example = False  # one row per proxy, not per example
    # every proxy's row sums over the whole batch, and the positive part is divided by the number
    # of proxies with a positive in the batch: examples are coupled by definition
    batch_independent: ClassVar[bool] = False

    def _loss(self, reduction: Reduction) -> ProxyAnchorGeneric:
        torch.manual_seed(0)
        return ProxyAnchorGeneric(5, 4, alpha=8.0, reduction=reduction)

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return self._loss(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        e, labels = inputs
        proxies = self._loss(reduction).proxies.detach().to(e.dtype)
        y = (torch.arange(5)[:, None] == labels[None]).to(e.dtype)
        return proxy_anchor_generic(e, proxies, y, alpha=8.0, reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        e = torch.randn(batch, 4, generator=generator, dtype=torch.float64).to(device, dtype)
        return e, torch.randint(0, 5, (batch,), generator=generator).to(device)
