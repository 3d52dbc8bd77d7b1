"""The benchmark's official-style baseline computes the same layer as ours."""

from __future__ import annotations

import torch

from paperzoo.imp_moe import MoEFFN
from paperzoo.imp_moe.bench import einsum_dispatch_forward


def test_one_hot_einsum_dispatch_equals_gather_scatter() -> None:
    torch.manual_seed(0)
    layer = MoEFFN(8, 16, 4, group_size=16).double()
    x = torch.randn(4, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(
        einsum_dispatch_forward(layer, x), layer(x)[0], rtol=1e-12, atol=1e-12
    )
