"""Shared fixtures: one torch thread (tiny tensors, shared CI cores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(
    m: int = 60, n: int = 5, k: int = 3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian classes with distinct means and per-feature scales; every class present."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(m) % k
    means = 2.0 * torch.randn(k, n, generator=g, dtype=torch.float64)
    scales = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    x = means[y] + scales * torch.randn(m, n, generator=g, dtype=torch.float64)
    return x.to(dtype), y
