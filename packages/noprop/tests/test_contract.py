"""The core contract suite on every public loss and layer of paperzoo.noprop."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests, LossContractTests
from paperzoo.noprop import (
    ConvDenoiseBlock,
    DTDenoiseLoss,
    MLPDenoiseBlock,
    NoPropDT,
    dt_denoise_loss,
)

K, E, D = 4, 4, 5


class TestDTDenoiseLossContract(LossContractTests):
    num_classes = None

    def make_loss(self, reduction: str) -> nn.Module:
        return DTDenoiseLoss(T=10, eta=0.1, reduction=reduction)  # type: ignore[arg-type]

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        u_hat, u_y, snr_t, snr_p = inputs
        return dt_denoise_loss(u_hat, u_y, snr_t, snr_p, 10, 0.1, reduction)  # type: ignore[arg-type]

    def make_inputs(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        u_hat = torch.randn(batch, E, generator=generator, dtype=torch.float64).to(device, dtype)
        u_y = torch.randn(batch, E, generator=generator, dtype=torch.float64).to(device, dtype)
        snr_p = torch.rand(batch, generator=generator, dtype=torch.float64).to(device, dtype)
        snr_t = snr_p + 1.0
        return u_hat, u_y, snr_t, snr_p


class _BlockLoss(nn.Module):
    """NoProp-DT block loss of a tiny MLP chain as a loss of the inputs x (labels y).

    Noise comes from a fixed-seed generator so the module and the functional twin agree; BN is
    off (norm='none') so the float64 gradcheck sees a smooth function of x.
    """

    def __init__(self, reduction: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = NoPropDT(lambda: MLPDenoiseBlock(D, K, K, hidden=6, norm="none"), K, T=3)
        self.reduction = reduction

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self.model.to(x.dtype if x.dtype.is_floating_point else torch.float32).to(x.device)
        gen = torch.Generator().manual_seed(7)  # CPU draws, moved: CUDA sees the same noise
        return self.model.block_loss(2, x, y, self.reduction, generator=gen)  # type: ignore[arg-type]


class TestNoPropBlockLossContract(LossContractTests):
    num_classes = K

    def make_loss(self, reduction: str) -> nn.Module:
        return _BlockLoss(reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: str) -> Tensor:
        return _BlockLoss(reduction)(*inputs)

    def make_inputs(
        self, batch: int, *, dtype: torch.dtype, device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        x = torch.randn(batch, D, generator=generator, dtype=torch.float64).to(device, dtype)
        y = torch.randint(0, K, (batch,), generator=generator).to(device)
        return x, y


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
