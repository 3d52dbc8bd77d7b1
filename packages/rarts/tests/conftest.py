"""Shared fixtures: tiny supernets and data that keep the suite fast on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.devices import torch_threads
from paperzoo.rarts.ops import (
    MNIST1D_PRIMITIVES,
)
from paperzoo.rarts.space import (
    SearchNetwork,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):  # the suite's timings assume one thread; the count before is restored
        yield


def tiny_supernet(dtype: torch.dtype = torch.float32, seed: int = 0) -> SearchNetwork:
    """1-D supernet: C=4, 2 cells (N, R), 2 nodes, the mnist1d primitives, input (N, 1, 8)."""
    torch.manual_seed(seed)
    net = SearchNetwork(
        4,
        3,
        2,
        steps=2,
        multiplier=2,
        primitives=MNIST1D_PRIMITIVES,
        in_channels=1,
        dims=1,
        reduction_cells=(1,),
    )
    return net.to(dtype)


def tiny_batches(
    n: int = 6, dtype: torch.dtype = torch.float32, seed: int = 0
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    xt = torch.randn(n, 1, 8, generator=g, dtype=dtype)
    xv = torch.randn(n, 1, 8, generator=g, dtype=dtype)
    return (xt, torch.randint(0, 3, (n,), generator=g)), (
        xv,
        torch.randint(0, 3, (n,), generator=g),
    )


class TinySoftmaxSupernet(nn.Module):
    """Softmax regression over a mixture of 3 feature maps (identity, tanh, softplus): no BN, smooth."""

    def __init__(self, features: int = 5, classes: int = 3) -> None:
        super().__init__()
        self.num_classes = classes
        self.weight = nn.Parameter(0.1 * torch.randn(3, classes, features, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(classes, dtype=torch.float64))
        self.alpha = nn.Parameter(0.1 * torch.randn(3, dtype=torch.float64))
        self.maps: list[Callable[[Tensor], Tensor]] = [
            lambda x: x,
            torch.tanh,
            nn.functional.softplus,
        ]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [self.weight, self.bias]

    def forward(self, x: Tensor) -> Tensor:
        p = torch.softmax(self.alpha, 0)
        feats = torch.stack([f(x) for f in self.maps])  # (3, N, F)
        return torch.einsum("o,onf,ocf->nc", p, feats, self.weight) + self.bias


@pytest.fixture
def softmax_supernet() -> Callable[..., TinySoftmaxSupernet]:
    return TinySoftmaxSupernet


@pytest.fixture
def make_tiny_supernet() -> Callable[..., SearchNetwork]:
    return tiny_supernet


@pytest.fixture
def make_tiny_batches() -> Callable[..., tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]]:
    return tiny_batches
