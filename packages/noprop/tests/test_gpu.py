"""CUDA == CPU for NoProp's losses, training step and inference; half-precision autocast finite."""

from __future__ import annotations

import copy

import pytest
import torch

from paperzoo.noprop import (
    MLPDenoiseBlock,
    NoPropCT,
    NoPropDT,
    NoPropFM,
    train_blocks_vmapped,
)

pytestmark = pytest.mark.gpu
K = 4


def _dt() -> NoPropDT:
    torch.manual_seed(0)
    return NoPropDT(lambda: MLPDenoiseBlock(12, K, K, hidden=16), K, T=4)


def test_cuda_block_loss_and_noiseless_inference_match_cpu() -> None:
    cpu = _dt()
    gpu = copy.deepcopy(cpu).cuda()
    x, y = torch.rand(32, 12), torch.randint(0, K, (32,))
    for t in (1, 4):
        # noise drawn on the CPU generator for both, so the inputs are identical
        lc = cpu.block_loss(t, x, y, generator=torch.Generator().manual_seed(t))
        lg = gpu.block_loss(t, x.cuda(), y.cuda(), generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(lg.cpu(), lc, rtol=1e-4, atol=1e-4)
    cpu.eval()
    gpu.eval()
    with torch.no_grad():
        pc = cpu.predict_logits(x, stochastic=False, generator=torch.Generator().manual_seed(0))
        pg = gpu.predict_logits(
            x.cuda(), stochastic=False, generator=torch.Generator().manual_seed(0)
        )
    torch.testing.assert_close(pg.cpu(), pc, rtol=1e-4, atol=1e-4)


def test_cuda_vmapped_step_matches_cpu_loop() -> None:
    cpu = _dt()
    gpu = copy.deepcopy(cpu).cuda()
    x, y = torch.rand(32, 12), torch.randint(0, K, (32,))
    oc = torch.optim.SGD(cpu.parameters(), lr=1e-3)
    og = torch.optim.SGD(gpu.parameters(), lr=1e-3)
    lc = cpu.train_step(x, y, oc, generator=torch.Generator().manual_seed(0))
    lg = train_blocks_vmapped(
        gpu, x.cuda(), y.cuda(), og, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(lg.cpu(), lc, rtol=1e-4, atol=1e-3)
    for (name, a), b in zip(cpu.state_dict().items(), gpu.state_dict().values(), strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_losses_and_inference_are_finite(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    dt = _dt().cuda()
    ct = NoPropCT(MLPDenoiseBlock(12, K, K, hidden=16, time_dim=8), K).cuda()
    fm = NoPropFM(MLPDenoiseBlock(12, K, K, hidden=16, time_dim=8), K).cuda()
    x, y = torch.rand(16, 12, device="cuda"), torch.randint(0, K, (16,), device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        losses = [dt.block_loss(2, x, y), ct.loss(x, y), fm.loss(x, y)]
        logits = [dt.predict_logits(x), ct.predict_logits(x, steps=5), fm.predict_logits(x)]
    for value in losses:
        value.float().backward()
        assert bool(torch.isfinite(value).all())
    assert all(bool(torch.isfinite(v).all()) for v in logits)
