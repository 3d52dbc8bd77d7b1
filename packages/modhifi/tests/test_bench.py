"""The benchmark's reference implementations agree with the batched ones they are raced against."""

from __future__ import annotations

import torch
from torch import nn

from paperzoo.modhifi import LayerStats, compensation
from paperzoo.modhifi.bench import loop_q, loop_solve


def test_per_channel_loop_q_equals_the_batched_grouped_conv() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1).double().eval()
    x = torch.randn(4, 6, 7, 7, dtype=torch.float64)
    st = LayerStats.collect(conv, conv, x, center="none")
    assert st.q is not None
    torch.testing.assert_close(loop_q(conv, x), st.q, rtol=1e-10, atol=1e-10)


def test_per_channel_solve_equals_the_batched_cholesky() -> None:
    torch.manual_seed(1)
    a = torch.randn(5, 8, 30, dtype=torch.float64)
    q = a @ a.transpose(1, 2)
    keep = torch.tensor([True, False, True, True, False, True, False, True])
    torch.testing.assert_close(loop_solve(q, keep), compensation(q, keep), rtol=1e-9, atol=1e-10)
