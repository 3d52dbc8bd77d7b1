"""The core contract suite on every public loss and layer of paperzoo.imp_moe."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.imp_moe import (
    Attention,
    ClassificationHead,
    ClassificationLoss,
    CommonSpace,
    CrossModalNCELoss,
    DropToken,
    FeedForward,
    IMPEncoder,
    MoEFFN,
    PatchEmbed1D,
    PatchEmbed2D,
    PatchEmbed3D,
    TokenEmbed,
    TransformerBlock,
    classification_loss,
    cross_modal_nce,
)

D, N = 8, 6


class _Tokens:
    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, N, D, generator=generator, dtype=torch.float64).to(device, dtype)


class TestMoEFFNExpertsChooseContract(_Tokens, LayerContractTests):
    # experts-choose ranks the tokens of a whole group: examples are coupled unless each group
    # is one example (group_size = tokens per example), the per-sample mode
    batch_pooled = True

    def make_layer(self) -> nn.Module:
        return MoEFFN(D, 16, 4, group_size=2048)

    def make_per_sample_layer(self) -> nn.Module:
        return MoEFFN(D, 16, 4, group_size=N)


class TestMoEFFNTokensChooseContract(_Tokens, LayerContractTests):
    # capacity couples the tokens of a group; one example per group is the per-sample mode
    batch_pooled = True

    def make_layer(self) -> nn.Module:
        return MoEFFN(D, 16, 4, router="tokens_choose", top_k=2, batch_prioritized=True)

    def make_per_sample_layer(self) -> nn.Module:
        return MoEFFN(D, 16, 4, router="tokens_choose", top_k=2, group_size=N)


class TestFeedForwardContract(_Tokens, LayerContractTests):
    checks_nonfinite = False  # a plain FFN propagates NaN like nn.Linear (no sync in the hot path)

    def make_layer(self) -> nn.Module:
        return FeedForward(D, 16)


class TestAttentionContract(_Tokens, LayerContractTests):
    checks_nonfinite = False  # as nn.MultiheadAttention: no sync in the hot path

    def make_layer(self) -> nn.Module:
        return Attention(D, 2, qk_layernorm=True)


class TestTransformerBlockContract(_Tokens, LayerContractTests):
    batch_pooled = True  # through its MoE FFN (see above)

    def make_layer(self) -> nn.Module:
        return TransformerBlock(D, 2, MoEFFN(D, 16, 2), qk_layernorm=True)

    def make_per_sample_layer(self) -> nn.Module:
        return TransformerBlock(D, 2, MoEFFN(D, 16, 2, group_size=N), qk_layernorm=True)


class TestIMPEncoderContract(LayerContractTests):
    batch_pooled = True  # through its MoE layers (see above)

    def _enc(self, group_size: int) -> nn.Module:
        stem = PatchEmbed1D(2, 1, D, max_len=N)
        return IMPEncoder(
            D,
            2,
            2,
            {"seq": stem},
            num_moe_layers=1,
            moe_kwargs={"group_size": group_size},
            qk_layernorm=True,
        )

    def make_layer(self) -> nn.Module:
        return self._enc(2048)

    def make_per_sample_layer(self) -> nn.Module:
        return self._enc(N)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 2 * N, generator=generator, dtype=torch.float64).to(device, dtype)


class TestPatchEmbed1DContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return PatchEmbed1D(4, 1, D, max_len=8)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 16, generator=generator, dtype=torch.float64).to(device, dtype)


class TestPatchEmbed2DContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return PatchEmbed2D((2, 2), 1, D, max_grid=(4, 4))

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 1, 4, 6, generator=generator, dtype=torch.float64).to(
            device, dtype
        )


class TestPatchEmbed3DContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return PatchEmbed3D((2, 2, 2), 1, D, max_grid=(2, 2, 2))

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        x = torch.randn(batch, 1, 2, 4, 4, generator=generator, dtype=torch.float64)
        return x.to(device, dtype)


class TestTokenEmbedContract(LayerContractTests):
    checks_nonfinite = False  # integer ids cannot be NaN

    def make_layer(self) -> nn.Module:
        return TokenEmbed(20, D, max_len=8)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randint(0, 20, (batch, 5), generator=generator).to(device)

    def bad_shape_input(self, x: Tensor) -> Tensor:
        return x[:, 0]  # 1-D ids

    def test_gradcheck_float64(self) -> None:
        """Ids are integers: the gradient flows to the embedding table instead."""
        layer = self._layer(torch.float64)
        ids = self._x(batch=2)
        w = layer.embed.weight.detach().clone().requires_grad_(True)

        def f(t: Tensor) -> Tensor:
            with torch.nn.utils.stateless._reparametrize_module(layer, {"embed.weight": t}):  # type: ignore[attr-defined]
                out: Tensor = layer(ids)
            return out

        assert torch.autograd.gradcheck(f, (w,), eps=1e-6, atol=1e-5, rtol=1e-4)


class TestDropTokenContract(_Tokens, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return DropToken(0.5).eval()  # the contract's determinism needs eval mode (keeps all)

    def bad_shape_input(self, x: Tensor) -> Tensor:
        return x[:, :, 0]  # (B, N): not tokens (DropToken takes any width d)

    def test_parameter_gradients_finite(self) -> None:
        pytest.skip("DropToken has no parameters")


class _Pooled:
    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, D, generator=generator, dtype=torch.float64).to(device, dtype)


class TestClassificationHeadContract(_Pooled, LayerContractTests):
    def make_layer(self) -> nn.Module:
        head = ClassificationHead(D, 3)
        nn.init.normal_(head.linear.weight)  # away from the zero init, so gradcheck sees x
        return head


class TestCommonSpaceContract(_Pooled, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return CommonSpace(D, 4, [("image", "text")])


class TestClassificationLossContract(LossContractTests):
    num_classes: ClassVar[int | None] = 5

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return ClassificationLoss(reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return classification_loss(inputs[0], inputs[1], reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        logits = torch.randn(batch, 5, generator=generator, dtype=torch.float64)
        return logits.to(device, dtype), torch.randint(0, 5, (batch,), generator=generator).to(
            device
        )


class TestCrossModalNCEContract(LossContractTests):
    # in-batch negatives: example i's loss depends on every other pair of the batch
    batch_independent = False

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return CrossModalNCELoss(0.2, reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        tau = torch.tensor(math.log(0.2)).to(inputs[0].dtype).exp()  # the module's exp(log_tau)
        return cross_modal_nce(inputs[0], inputs[1], tau, reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        za = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
        zb = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
        return za.to(device, dtype), zb.to(device, dtype)

    def test_batch_of_one(self) -> None:
        """NCE needs a negative: a batch of one pair is refused (spec section 9)."""
        with pytest.raises(ValueError, match="at least 2"):
            self._call(self._inputs(batch=1))
