"""The core contract suite on every public loss and layer of paperzoo.arabic_emo."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.arabic_emo import (
    BiLSTMHead,
    EncodedBatch,
    EncoderSpec,
    HybridLoss,
    LabelCorrelationLoss,
    MultiLabelContrastiveLoss,
    StackedBiLSTMClassifier,
    StackedEncoder,
    TinyTextEncoder,
    WeightedBCELoss,
    hybrid_loss,
    label_correlation_loss,
    multilabel_contrastive_loss,
    weighted_bce_loss,
)
from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests

K = 5
WEIGHT = torch.tensor([0.5, 1.0, 2.0, 2.0, 1.5], dtype=torch.float64)
POS_WEIGHT = torch.tensor([1.0, 3.0, 7.0, 7.0, 2.0], dtype=torch.float64)
C = torch.tensor(
    [
        [0.0, 0.6, 0.1, 0.0, 0.0],
        [0.6, 0.0, 0.3, 0.0, 0.2],
        [0.1, 0.3, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.5],
        [0.0, 0.2, 0.0, 0.5, 0.0],
    ],
    dtype=torch.float64,
)


def _labels(batch: int, generator: torch.Generator) -> Tensor:
    return (torch.rand(batch, K, generator=generator, dtype=torch.float64) < 0.4).double()


class _LogitTargetInputs:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        z = torch.randn(batch, K, generator=generator, dtype=torch.float64)
        return z.to(device, dtype), _labels(batch, generator).to(device, dtype)


class TestWeightedBCEContract(_LogitTargetInputs, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return WeightedBCELoss(WEIGHT, POS_WEIGHT, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return weighted_bce_loss(inputs[0], inputs[1], WEIGHT, POS_WEIGHT, reduction)


class _LogitsOnly:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        return (torch.randn(batch, K, generator=generator, dtype=torch.float64).to(device, dtype),)

    def bad_shape_inputs(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (inputs[0][:, :-1],)  # K - 1 labels for a (K, K) correlation matrix


class TestLabelCorrelationLaplacianContract(_LogitsOnly, LossContractTests):
    def make_loss(self, reduction: Reduction) -> nn.Module:
        return LabelCorrelationLoss(C, "laplacian", reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return label_correlation_loss(inputs[0], C, "laplacian", reduction)


class TestLabelCorrelationAlignContract(_LogitsOnly, LossContractTests):
    # the batch correlation of the predictions couples every example of the batch
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return LabelCorrelationLoss(C, "align", reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return label_correlation_loss(inputs[0], C, "align", reduction)


class _EmbeddingInputs:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        h = torch.randn(batch, 8, generator=generator, dtype=torch.float64)
        return h.to(device, dtype), _labels(batch, generator).to(device, dtype)


class TestPairwiseContrastiveContract(_EmbeddingInputs, LossContractTests):
    # a pair loss: each anchor's row averages its pairs with the rest of the batch
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return MultiLabelContrastiveLoss("pairwise", reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return multilabel_contrastive_loss(inputs[0], inputs[1], "pairwise", reduction=reduction)


class TestSupConContrastiveContract(_EmbeddingInputs, LossContractTests):
    # a pair loss: each anchor's softmax runs over the rest of the batch
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return MultiLabelContrastiveLoss("supcon", temperature=0.5, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return multilabel_contrastive_loss(
            inputs[0], inputs[1], "supcon", temperature=0.5, reduction=reduction
        )


class _HybridTotal(nn.Module):
    """The contract takes a tensor: the ``total`` of :class:`HybridLoss` (its other fields are
    tested in test_losses.py)."""

    def __init__(self, loss: HybridLoss, embeddings: bool) -> None:
        super().__init__()
        self.loss = loss
        self.embeddings = embeddings

    def forward(self, logits: Tensor, targets: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.loss(logits, targets, emb).total  # type: ignore[no-any-return]


class _HybridInputs:
    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        z = torch.randn(batch, K, generator=generator, dtype=torch.float64)
        y = _labels(batch, generator)
        h = torch.randn(batch, 8, generator=generator, dtype=torch.float64)
        return z.to(device, dtype), y.to(device, dtype), h.to(device, dtype)


class TestHybridLossContract(_HybridInputs, LossContractTests):
    # the contrastive term couples the batch (see TestHybridWithoutContrastiveContract)
    batch_independent: ClassVar[bool] = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return _HybridTotal(
            HybridLoss(WEIGHT, C, 0.3, 0.2, pos_weight=POS_WEIGHT, reduction=reduction), True
        )

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return hybrid_loss(
            *inputs,
            weight=WEIGHT,
            pos_weight=POS_WEIGHT,
            correlation=C,
            lambda_corr=0.3,
            lambda_con=0.2,
            reduction=reduction,
        ).total


class TestHybridWithoutContrastiveContract(_LogitTargetInputs, LossContractTests):
    """WBCE + Laplacian correlation only: every row is its example's loss alone."""

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return _HybridTotal(HybridLoss(WEIGHT, C, 0.5, 0.0, reduction=reduction), False)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return hybrid_loss(
            inputs[0],
            inputs[1],
            weight=WEIGHT,
            correlation=C,
            lambda_corr=0.5,
            lambda_con=0.0,
            reduction=reduction,
        ).total


class TestBiLSTMHeadContract(LayerContractTests):
    # dropout 0: the contract's gradcheck runs in train mode and needs a deterministic layer
    def make_layer(self) -> nn.Module:
        return BiLSTMHead(6, num_labels=4, lstm_hidden=5, dropout=0.0, mlp_hidden=7)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 3, 6, generator=generator, dtype=torch.float64).to(device, dtype)


class TestBiLSTMHeadMaxPoolContract(TestBiLSTMHeadContract):
    def make_layer(self) -> nn.Module:
        return BiLSTMHead(
            6, num_labels=4, lstm_hidden=5, dropout=0.0, summary="maxpool", mlp_hidden=7
        )


class _CachedClassifier(nn.Module):
    """The stacked classifier from cached states of two encoders (token fusion): the input
    ``(B, L, 12)`` is split into the two encoders' ``(B, L, 5)`` and ``(B, L, 7)`` states with
    right-padded masks of length L where ``x[b, 0, 0] > 0`` and ``max(1, L - 2)`` elsewhere
    (a function of the row alone)."""

    def __init__(self) -> None:
        super().__init__()
        specs = [
            EncoderSpec(TinyTextEncoder(20, 4, 1, 2, 8)),
            EncoderSpec(TinyTextEncoder(20, 6, 1, 2, 8), pooling="mean"),
        ]
        self.model = StackedBiLSTMClassifier(
            StackedEncoder(specs, d_meta=3), num_labels=4, lstm_hidden=5, dropout=0.0
        )
        # the test's features come in as 5- and 7-wide states: adapt the declared widths
        self.model.stacked.hidden_sizes = [5, 7]
        self.model.stacked.projections[0][0] = nn.Linear(5, 3)
        self.model.stacked.projections[1][0] = nn.Linear(7, 3)

    def reset_parameters(self) -> None:
        self.model.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        b, length, _ = x.shape
        short = torch.full((b,), max(1, length - 2))
        lengths = torch.where(x[:, 0, 0] > 0, torch.full_like(short, length), short)
        mask = torch.arange(length)[None, :] < lengths[:, None]
        enc = EncodedBatch([x[..., :5], x[..., 5:]], [mask, mask])
        return self.model.forward_encoded(enc).logits  # type: ignore[no-any-return]


class TestStackedClassifierContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return _CachedClassifier()

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 4, 12, generator=generator, dtype=torch.float64).to(device, dtype)
