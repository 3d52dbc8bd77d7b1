"""The core contract suite on every public loss and layer of paperzoo.noprop."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.noprop import (
    ConvDenoiseBlock,
    DTDenoiseLoss,
    MLPDenoiseBlock,
    NoPropCT,
    NoPropDT,
    NoPropFM,
    backprop_chain_loss,
    dt_denoise_loss,
)

K, E, D, T = 4, 4, 5, 3


class TestDTDenoiseLossContract(LossContractTests):
    num_classes = None

    def make_loss(self, reduction: str) -> nn.Module:
        return DTDenoiseLoss(T=10, eta=0.1, reduction=cast(Reduction, reduction))

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        u_hat, u_y, snr_t, snr_p = inputs
        return dt_denoise_loss(u_hat, u_y, snr_t, snr_p, 10, 0.1, cast(Reduction, reduction))

    def make_inputs(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        u_hat = torch.randn(batch, E, generator=generator, dtype=torch.float64).to(device, dtype)
        u_y = torch.randn(batch, E, generator=generator, dtype=torch.float64).to(device, dtype)
        snr_p = torch.rand(batch, generator=generator, dtype=torch.float64).to(device, dtype)
        snr_t = snr_p + 1.0
        return u_hat, u_y, snr_t, snr_p


def _normal(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype,
            device: torch.device | str) -> Tensor:  # fmt: skip
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(device, dtype)


class _ModelLoss(nn.Module):
    """A NoProp model's loss as a loss of the inputs x (labels y, then times / noise).

    The noise is an input (``noise=``), one row per example, so a batch and one example alone
    see the same draws; BN is off (norm='none') so the float64 gradcheck sees a smooth function
    of x and rows do not share batch statistics.
    """

    def __init__(self, kind: str, reduction: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kind = kind
        self.reduction = cast(Reduction, reduction)
        self.model: nn.Module
        if kind in ("dt", "chain"):
            self.model = NoPropDT(lambda: MLPDenoiseBlock(D, K, K, hidden=6, norm="none"), K, T=T)
        elif kind == "ct":
            self.model = NoPropCT(MLPDenoiseBlock(D, K, K, hidden=6, time_dim=4), K)
        else:
            self.model = NoPropFM(MLPDenoiseBlock(D, K, K, hidden=6, time_dim=4), K)

    def forward(self, x: Tensor, y: Tensor, *rest: Tensor) -> Tensor:
        self.model.to(x.dtype if x.dtype.is_floating_point else torch.float32).to(x.device)
        m: Any = self.model
        if self.kind == "dt":
            return m.block_loss(2, x, y, self.reduction, noise=rest[0])  # type: ignore[no-any-return]
        if self.kind == "chain":
            return backprop_chain_loss(m, x, y, self.reduction, noise=rest[0])
        return m.loss(x, y, self.reduction, t=rest[0], noise=rest[1])  # type: ignore[no-any-return]


class _ModelLossContract(LossContractTests):
    num_classes = K
    kind = "dt"

    def make_loss(self, reduction: str) -> nn.Module:
        return _ModelLoss(self.kind, reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return _ModelLoss(self.kind, reduction)(*inputs)

    def make_inputs(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        x = _normal((batch, D), generator, dtype, device)
        y = torch.randint(0, K, (batch,), generator=generator).to(device)
        if self.kind == "dt":
            return x, y, _normal((batch, 2, K), generator, dtype, device)
        if self.kind == "chain":
            return x, y, _normal((batch, T + 1, K), generator, dtype, device)
        t = torch.rand(batch, generator=generator, dtype=torch.float64).to(device, dtype)
        shape = (batch, 2, K) if self.kind == "ct" else (batch, K)
        return x, y, t, _normal(shape, generator, dtype, device)


class TestNoPropBlockLossContract(_ModelLossContract):
    kind = "dt"


class TestBackpropChainLossContract(_ModelLossContract):
    kind = "chain"


class TestNoPropCTLossContract(_ModelLossContract):
    kind = "ct"


class TestNoPropFMLossContract(_ModelLossContract):
    kind = "fm"


class _OnConcat(nn.Module):
    """Feeds a denoising block from one tensor: the first ``d`` columns are x, the rest z."""

    def __init__(self, block: nn.Module, d: int) -> None:
        super().__init__()
        self.block = block
        self.d = d

    def reset_parameters(self) -> None:
        self.block.reset_parameters()  # type: ignore[operator]

    def forward(self, inp: Tensor) -> Tensor:
        out: Tensor = self.block(inp[:, : self.d], inp[:, self.d :])
        return out


class _OnConcatTime(_OnConcat):
    """As :class:`_OnConcat`, the last column is t ∈ [0, 1]."""

    def forward(self, inp: Tensor) -> Tensor:
        out: Tensor = self.block(inp[:, : self.d], inp[:, self.d : -1], inp[:, -1])
        return out


class TestMLPDenoiseBlockContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return _OnConcat(MLPDenoiseBlock(D, E, K, hidden=8), D)

    def make_input(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:  # fmt: skip
        return torch.randn(batch, D + E, generator=generator, dtype=torch.float64).to(device, dtype)


class TestTimeConditionedMLPBlockContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        return _OnConcatTime(MLPDenoiseBlock(D, E, E, hidden=8, time_dim=8), D)

    def make_input(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:  # fmt: skip
        x = torch.randn(batch, D + E, generator=generator, dtype=torch.float64)
        t = torch.rand(batch, 1, generator=generator, dtype=torch.float64)
        return torch.cat([x, t], 1).to(device, dtype)

    def bad_shape_input(self, x: Tensor) -> Tensor:
        return torch.cat([x[:, : D + E - 1], x[:, -1:]], 1)


class TestConvDenoiseBlockContract(LayerContractTests):
    def make_layer(self) -> nn.Module:
        # dropout 0 so the float64 gradcheck (train mode) is deterministic
        return _OnConcat(ConvDenoiseBlock(1, 4, E, K, widths=(2,), fc=4, dropout=0.0), 16)

    def make_input(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:  # fmt: skip
        return torch.randn(batch, 16 + E, generator=generator, dtype=torch.float64).to(
            device, dtype
        )
