"""The core contract suite on every public loss, plus spec section 9's bad input and the API snapshot."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

import paperzoo.metric_losses as ml
from paperzoo.core.testing import LossContractTests
from paperzoo.metric_losses import (
    FewShotLoss,
    ICNNLoss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    ProtoTripletLoss,
    few_shot_loss,
    icnn_loss,
    multi_similarity_loss,
    proto_triplet_loss,
)


class TestMultiSimilarityContract(LossContractTests):
    """MS loss against a fixed reference set (cross-batch memory), so a batch of one is valid.

    Labels are arbitrary class ids (no range), hence ``num_classes = None``.
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
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.inner = inner
        self.pick_loss = pick_loss

    def forward(self, query: Tensor, ql: Tensor, support: Tensor, sl: Tensor) -> Tensor:
        out = self.inner(support, sl, query, ql)
        return out[0] if self.pick_loss else out  # type: ignore[no-any-return]


class _EpisodeContract(LossContractTests):
    num_classes = 3
    per_example = False
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
        return few_shot_loss(s, sl, q, ql)[0]


# --------------------------------------------------------------------------- spec section 9


def _ok() -> tuple[Tensor, Tensor]:
    return torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"beta": -1.0}, "beta"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"reduction": "avg"}, "reduction"),
        ({"similarity": "euclid"}, "similarity"),
    ],
)
def test_invalid_hyper_parameters_raise_naming_the_argument(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MultiSimilarityLoss(**kwargs)  # type: ignore[arg-type]
    e, y = _ok()
    with pytest.raises(ValueError, match=match):
        multi_similarity_loss(e, y, **kwargs)  # type: ignore[arg-type]


def test_bad_embeddings_and_labels_raise_clear_errors() -> None:
    e, y = _ok()
    loss = MultiSimilarityLoss()
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        loss(e.unsqueeze(0), y)
    with pytest.raises(TypeError, match="embeddings must be a floating"):
        loss(e.long(), y)
    with pytest.raises(TypeError, match="labels must be an integer"):
        loss(e, y.float())
    with pytest.raises(ValueError, match="labels must be 1-D"):
        loss(e, y.unsqueeze(1))
    with pytest.raises(ValueError, match="labels has length 5"):
        loss(e, y[:5])
    with pytest.raises(ValueError, match="ref_embeddings and ref_labels"):
        loss(e, y, ref_embeddings=e)
    with pytest.raises(ValueError, match="ref_embeddings has dimension 3"):
        loss(e, y, e[:, :3], y)
    bad = e.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="embeddings contains NaN"):
        loss(bad, y)
    with pytest.raises(ValueError, match="ref_embeddings contains NaN"):
        loss(e, y, bad, y)
    with pytest.raises(ValueError, match="at least 2 rows"):
        loss(e[:1], y[:1])
    with pytest.raises(ValueError, match="non-negative"):
        loss(e, y - 1)
    with pytest.raises(ValueError, match="pairs"):
        loss(e, y, pairs=(y, y))
    with pytest.raises(ValueError, match=r"pairs\.p"):
        loss(e, y, pairs=(y, y + 10, y, y))


def test_zero_norm_embedding_warns_and_stays_finite() -> None:
    e, y = _ok()
    e[0] = 0.0
    with pytest.warns(RuntimeWarning, match="zero-norm"):
        out = MultiSimilarityLoss()(e, y)
    assert torch.isfinite(out)


def test_miner_rejects_bad_input_too() -> None:
    e, y = _ok()
    with pytest.raises(ValueError, match="epsilon"):
        MultiSimilarityMiner(epsilon=-1.0)
    with pytest.raises(ValueError, match="labels has length"):
        MultiSimilarityMiner()(e, y[:3])


# --------------------------------------------------------------------------- API snapshot


def test_public_api_snapshot() -> None:
    assert sorted(ml.__all__) == [
        "FewShotLoss",
        "ICNNLoss",
        "MSConfig",
        "MultiSimilarityLoss",
        "MultiSimilarityMiner",
        "PairIndices",
        "ProtoTripletLoss",
        "__version__",
        "few_shot_loss",
        "gpw_weights",
        "icnn_loss",
        "icnn_score",
        "map_at_r",
        "ms_pair_weights",
        "multi_similarity_loss",
        "multi_similarity_loss_from_similarity",
        "multi_similarity_masks",
        "pair_masks",
        "proto_logits",
        "proto_triplet_loss",
        "prototypes",
        "recall_at_k",
        "retrieval_metrics",
        "similarity_matrix",
    ]
    for name in ml.__all__:
        assert hasattr(ml, name)
