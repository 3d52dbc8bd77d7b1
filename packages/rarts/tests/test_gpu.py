"""CUDA steps equal CPU steps; autocast steps stay finite (skipped without CUDA by the core's pytest plugin)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from paperzoo.rarts.darts import DartsSecondOrder
from paperzoo.rarts.search import RARTS


def _rarts(net: Any) -> RARTS:
    return RARTS(
        net,
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        torch.optim.Adam(net.arch_parameters(), lr=3e-3, betas=(0.5, 0.999)),
    )


@pytest.mark.gpu
def test_rarts_and_darts2_steps_on_cuda_match_cpu(
    make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    bt, bv = make_tiny_batches(dtype=torch.float64)
    for build in (
        _rarts,
        lambda n: DartsSecondOrder(
            n,
            torch.optim.SGD(n.weight_parameters(), lr=0.05),
            torch.optim.Adam(n.arch_parameters(), lr=3e-3),
        ),
    ):
        cpu_net = make_tiny_supernet(torch.float64)
        gpu_net = copy.deepcopy(cpu_net).cuda()
        s_cpu, s_gpu = build(cpu_net), build(gpu_net)
        to_gpu = lambda b: (b[0].cuda(), b[1].cuda())  # noqa: E731
        for _ in range(3):
            out_cpu = s_cpu.step(bt, bv)
            out_gpu = s_gpu.step(to_gpu(bt), to_gpu(bv))
        for k, v in out_cpu.items():
            assert out_gpu[k] == pytest.approx(v, rel=1e-6, abs=1e-9)
        for p, q in zip(cpu_net.parameters(), gpu_net.parameters(), strict=True):
            torch.testing.assert_close(q.detach().cpu(), p.detach(), rtol=1e-6, atol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rarts_step_under_autocast_is_finite(
    dtype: torch.dtype, make_tiny_supernet: Any, make_tiny_batches: Any
) -> None:
    net = make_tiny_supernet().cuda()
    s = _rarts(net)
    bt, bv = make_tiny_batches()
    bt, bv = (bt[0].cuda(), bt[1].cuda()), (bv[0].cuda(), bv[1].cuda())
    with torch.autocast("cuda", dtype=dtype):
        out = s.step(bt, bv)
    assert all(v == v and abs(v) < float("inf") for v in out.values())
    assert all(bool(torch.isfinite(a).all()) for a in net.arch_parameters())
