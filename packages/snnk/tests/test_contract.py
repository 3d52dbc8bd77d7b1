"""The core contract suite on every public layer of paperzoo.snnk."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests
from paperzoo.snnk import (
    URF,
    Cos,
    HoulsbyAdapter,
    LoRALinear,
    PositiveRandomFeatures,
    ReLURandomFeatures,
    SNNKAdapter,
    SNNKLinear,
    bundle,
)

D = 6


class _Input:
    scale: ClassVar[float] = 1.0

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        x = torch.randn(batch, D, generator=generator, dtype=torch.float64) * self.scale
        return x.to(device, dtype)


class TestSNNKLinearCosContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return SNNKLinear(D, 5, 16, activation="cos")


class TestSNNKLinearExpOrthogonalContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return SNNKLinear(D, 5, 16, activation="exp", orthogonal=True, M=0.1)


class TestSNNKLinearGaussianContract(_Input, LayerContractTests):
    scale = 0.3

    def make_layer(self) -> nn.Module:
        return SNNKLinear(D, 5, 16, activation="gaussian")


class TestSNNKLinearReLUContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return SNNKLinear(D, 5, 16, activation="relu")


class TestSNNKAdapterBottleneckContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        ad = SNNKAdapter(D, 8, bottleneck=3, kind="cos", layer_norm=True)
        with torch.no_grad():  # move away from the identity so the test sees the adapter
            ad.up.weight.normal_()  # type: ignore[union-attr]
        return ad


class TestSNNKAdapterNoBottleneckContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        ad = SNNKAdapter(D, 8, kind="relu")
        with torch.no_grad():
            ad.scale.normal_()  # type: ignore[union-attr]
        return ad


class TestHoulsbyAdapterContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return HoulsbyAdapter(D, 3)


class TestLoRALinearContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return LoRALinear(nn.Linear(D, 4), 2)


class TestFullyBundledNetworkContract(_Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return bundle(
            nn.Sequential(nn.Linear(D, 7), Cos(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 2)), 12
        )


class _NoParameters:
    def test_parameter_gradients_finite(self) -> None:
        """Overridden: a feature map has no trainable parameters by design (its draws are
        frozen buffers); gradients flow to the input instead."""
        layer = self._layer()  # type: ignore[attr-defined]
        assert [p for p in layer.parameters() if p.requires_grad] == []
        x = self._x().requires_grad_(True)  # type: ignore[attr-defined]
        layer(x).square().mean().backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())


class TestPositiveRandomFeaturesContract(_NoParameters, _Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return PositiveRandomFeatures(D, 16, M=0.2)


class TestPositiveRandomFeaturesL2Contract(_NoParameters, _Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return PositiveRandomFeatures(D, 16, prescale="l2", orthogonal=True)


class TestReLURandomFeaturesContract(_NoParameters, _Input, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return ReLURandomFeatures(D, 16)


class TestURFContract(_NoParameters, _Input, LayerContractTests):
    scale = 0.3

    def make_layer(self) -> nn.Module:
        return URF("gaussian", D, 16)
