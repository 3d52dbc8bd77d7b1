"""Shared fixtures: tiny BN CNNs and calibration data that run in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn


def tiny_cnn(dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Sequential:
    """conv(1->4) BN ReLU conv(4->6) BN ReLU pool conv(6->5) BN ReLU GAP flatten FC(5->3)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 5, 3, padding=1),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 3),
    ).to(dtype)
    x = torch.randn(64, 1, 8, 8, dtype=dtype)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x)  # non-trivial running statistics
    return net.eval()


def calib(n: int = 32, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64).to(dtype)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is fastest on shared cores (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
