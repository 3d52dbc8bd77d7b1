"""One intra-op thread: the tensors here are tiny, and on a shared 2-core machine more threads only
oversubscribe the cores (measured 40x slower per step under load)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

torch.set_num_threads(1)


@pytest.fixture
def far_episode() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A 5-way 2-shot 3-query episode ``(support, support_labels, query, query_labels)`` whose
    points sit far from the origin (large norms: where half-precision distances cancel)."""
    g = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.randn(5, 32, generator=g) + 5.0
    sl = torch.arange(5).repeat_interleave(2)
    ql = torch.arange(5).repeat_interleave(3)
    s = centres[sl] + 0.3 * torch.randn(10, 32, generator=g)
    q = centres[ql] + 0.3 * torch.randn(15, 32, generator=g)
    return s, sl, q, ql
