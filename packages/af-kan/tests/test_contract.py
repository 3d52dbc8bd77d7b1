"""The core layer contract suite on every public layer and model of the package."""

from __future__ import annotations

import torch
from torch import nn

from paperzoo.af_kan import (
    AFKAN,
    MLP,
    RBFKAN,
    AFKANLayer,
    BSplineKAN,
    BSplineKANLayer,
    RBFKANLayer,
    ReLUKAN,
    ReLUKANLayer,
)
from paperzoo.core.testing import LayerContractTests


class _Inputs:
    in_features = 6

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> torch.Tensor:
        x = torch.rand(batch, self.in_features, generator=generator, dtype=dtype) * 1.8 - 0.9
        return (x + 0.0137).to(device)  # away from the grid knots


class TestAFKANLayerContract(_Inputs, LayerContractTests):
    # the default min-max normalisation (func_norm="batch", as the official code) pools the basis
    # statistics over the batch: a row's output depends on the other rows; per-sample mode below
    batch_pooled = True

    def make_layer(self) -> nn.Module:
        return AFKANLayer(6, 4)

    def make_per_sample_layer(self) -> nn.Module:
        return AFKANLayer(6, 4, func_norm="sample")


class TestAFKANLayerSampleNormSpatialContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return AFKANLayer(6, 4, method="spatial_attn", func_norm="sample", activation="gelu")


class TestAFKANLayerMultistepContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return AFKANLayer(6, 4, method="multistep", func="cubic1", func_norm=None, norm=None)


class TestReLUKANLayerContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return ReLUKANLayer(6, 4)


class TestBSplineKANLayerContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return BSplineKANLayer(6, 4)


class TestRBFKANLayerContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return RBFKANLayer(6, 4)


class TestAFKANContract(_Inputs, LayerContractTests):
    batch_pooled = True  # every AFKANLayer's default min-max normalisation pools over the batch

    def make_layer(self) -> nn.Module:
        return AFKAN([6, 5, 3])

    def make_per_sample_layer(self) -> nn.Module:
        return AFKAN([6, 5, 3], func_norm="sample")


class TestReLUKANContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return ReLUKAN([6, 5, 3])


class TestMLPContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return MLP([6, 5, 3])


class TestBSplineKANContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return BSplineKAN([6, 5, 3])


class TestRBFKANContract(_Inputs, LayerContractTests):
    def make_layer(self) -> nn.Module:
        return RBFKAN([6, 5, 3])
