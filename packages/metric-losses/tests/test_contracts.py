"""The core loss contract suite on every public loss (the bad input of spec section 9 is in the
``*_bad_input.py`` files, the public names in ``test_public_api.py``)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_reduction
from paperzoo.core.testing import LossContractTests
from paperzoo.metric_losses import (
    FewShotLoss,
    ICNNLoss,
    MultiSimilarityLoss,
    ProtoTripletLoss,
    few_shot_loss,
    icnn_loss,
    multi_similarity_loss,
    proto_triplet_loss,
)


class TestMultiSimilarityContract(LossContractTests):
    """MS loss against a fixed reference set (cross-batch memory), so a batch of one is valid.

    Labels are arbitrary class ids (no range), hence ``num_classes = None``. Each anchor is
    compared with the reference set only (its mining thresholds come from its own row), so this
    form IS batch-independent and keeps the contract's batch-independence test.
    """

    num_classes = None

    def make_loss(self, reduction: str) -> nn.Module:
        return MultiSimilarityLoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return multi_similarity_loss(*inputs, reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        e = torch.randn(batch, 8, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 3, (batch,), generator=generator)
        ref = torch.randn(11, 8, generator=generator, dtype=torch.float64)
        ry = torch.arange(11) % 3
        return e.to(device, dtype), y.to(device), ref.to(device, dtype), ry.to(device)


class TestMultiSimilarityInBatchContract(TestMultiSimilarityContract):
    """MS loss on the batch itself with mining off (every pair weighted)."""

    batch_size = 8
    # anchor i's loss sums over its pairs with the other rows of the batch: a pair loss couples
    # the batch by definition (one row alone has no pair at all)
    batch_independent = False

    def make_loss(self, reduction: str) -> nn.Module:
        return MultiSimilarityLoss(reduction=reduction, mining=False)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return multi_similarity_loss(*inputs, reduction=reduction, mining=False)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        e = torch.randn(batch, 8, generator=generator, dtype=torch.float64)
        y = torch.arange(batch) % 3
        return e.to(device, dtype), y.to(device)

    def test_batch_of_one(self) -> None:
        """Without a reference set a single embedding has no pair: spec section 9 wants a ValueError."""
        with pytest.raises(ValueError, match="at least 2 rows"):
            self._call(self._inputs(batch=1))


class TestProtoTripletContract(LossContractTests):
    num_classes = 4

    def make_loss(self, reduction: str) -> nn.Module:
        return ProtoTripletLoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return proto_triplet_loss(*inputs, reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        q = torch.randn(batch, 5, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 4, (batch,), generator=generator)
        protos = 2 * torch.randn(4, 5, generator=generator, dtype=torch.float64)
        return q.to(device, dtype), y.to(device), protos.to(device, dtype)


class _EpisodeLoss(nn.Module):
    """Harness adapter: the contract puts the tensor gradients flow to first, so the episode losses
    are called as ``(query, query_labels, support, support_labels)``; ``batch`` = queries per class.

    ICNN and the combined loss are one value per episode (a set-level score), so every reduction
    is the identity; an unknown reduction still raises.
    """

    def __init__(self, inner: nn.Module, reduction: str, pick_loss: bool) -> None:
        super().__init__()
        check_reduction(reduction)
        self.inner = inner
        self.pick_loss = pick_loss

    def forward(self, query: Tensor, ql: Tensor, support: Tensor, sl: Tensor) -> Tensor:
        out = self.inner(support, sl, query, ql)
        return out["loss"] if self.pick_loss else out  # type: ignore[no-any-return]


class _EpisodeContract(LossContractTests):
    num_classes = 3
    # one value per episode: the ICNN score ranks every point's neighbours among the whole
    # episode and the prototypes average the support, so the episode is coupled by definition
    per_example = False
    batch_independent = False
    batch_size = 2
    n_way: ClassVar[int] = 3
    k_shot: ClassVar[int] = 3

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        centres = 3 * torch.randn(self.n_way, 4, generator=generator, dtype=torch.float64)
        ql = torch.arange(self.n_way).repeat_interleave(batch)
        sl = torch.arange(self.n_way).repeat_interleave(self.k_shot)
        q = centres[ql] + torch.randn(len(ql), 4, generator=generator, dtype=torch.float64)
        s = centres[sl] + torch.randn(len(sl), 4, generator=generator, dtype=torch.float64)
        return q.to(device, dtype), ql.to(device), s.to(device, dtype), sl.to(device)

    def bad_shape_inputs(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        q, ql, s, sl = inputs
        return q, ql, s[:, :-1], sl  # support of another dimension


class TestICNNFullContract(_EpisodeContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return _EpisodeLoss(ICNNLoss(mode="full"), reduction, pick_loss=False)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        q, ql, s, sl = inputs
        return icnn_loss(s, sl, q, ql, mode="full")


class TestICNNQueryContract(_EpisodeContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return _EpisodeLoss(ICNNLoss(mode="query", query_ref="prototypes"), reduction, False)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        q, ql, s, sl = inputs
        return icnn_loss(s, sl, q, ql, mode="query", query_ref="prototypes")


class TestFewShotLossContract(_EpisodeContract):
    def make_loss(self, reduction: str) -> nn.Module:
        return _EpisodeLoss(FewShotLoss(), reduction, pick_loss=True)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        q, ql, s, sl = inputs
        return few_shot_loss(s, sl, q, ql)["loss"]
