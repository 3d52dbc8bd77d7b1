"""CUDA agrees with CPU, and mixed precision stays finite (skipped without CUDA by the core plugin)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.af_kan import AFKAN, ReLUKAN


def _models() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        AFKAN([40, 16, 10]),
        AFKAN([40, 16, 10], func_norm="sample", method="spatial_attn"),
        AFKAN([40, 16, 10], func_norm=None, method="multistep", activation="gelu"),
        ReLUKAN([40, 16, 10]),
    ]


@pytest.mark.gpu
@pytest.mark.parametrize("index", range(4))
def test_cuda_forward_and_gradients_match_cpu(index: int) -> None:
    model = _models()[index]
    x = torch.rand(32, 40, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out_cpu = model(x)
    out_cpu.square().mean().backward()
    grads_cpu = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    model.cuda()
    out_gpu = model(x.cuda())
    out_gpu.square().mean().backward()
    grads_gpu = [p.grad.cpu() for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-3, atol=1e-4)
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu, strict=True):
        torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_training_step_is_finite(dtype: torch.dtype) -> None:
    model = AFKAN([784, 64, 10]).cuda()
    x = torch.rand(256, 784, device="cuda") * 2 - 1
    with torch.autocast("cuda", dtype=dtype):
        out = model(x)
        loss = nn.functional.cross_entropy(out.float(), torch.randint(0, 10, (256,), device="cuda"))
    loss.backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
