"""CUDA equals CPU, and half-precision autocast stays finite (skipped without CUDA by the core plugin)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.metric_losses import (
    FewShotLoss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    icnn_score,
)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(256, 64, generator=g), torch.randint(0, 16, (256,), generator=g)


@pytest.mark.gpu
def test_ms_loss_and_gradient_on_cuda_equal_cpu() -> None:
    e, y = _batch()
    e64 = e.double()
    ec = e64.clone().requires_grad_(True)
    eg = e64.cuda().requires_grad_(True)
    lc = MultiSimilarityLoss()(ec, y)
    lg = MultiSimilarityLoss()(eg, y.cuda())
    lc.backward()
    lg.backward()
    torch.testing.assert_close(lg.cpu(), lc, rtol=0, atol=1e-10)
    assert eg.grad is not None and ec.grad is not None
    torch.testing.assert_close(eg.grad.cpu(), ec.grad, rtol=0, atol=1e-10)
    pc = MultiSimilarityMiner()(e64, y)
    pg = MultiSimilarityMiner()(e64.cuda(), y.cuda())
    for a, b in zip(pc, pg, strict=True):
        torch.testing.assert_close(b.cpu(), a)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_ms_loss_under_autocast_is_finite_and_close_to_fp32(dtype: torch.dtype) -> None:
    e, y = _batch()
    lin = torch.nn.Linear(64, 64).cuda()
    x = e.cuda()
    with torch.autocast("cuda", dtype=dtype):
        out = lin(x)
        loss = MultiSimilarityLoss()(out, y.cuda())
    loss.float().backward()
    assert torch.isfinite(loss)
    assert lin.weight.grad is not None
    assert torch.isfinite(lin.weight.grad).all()
    ref = MultiSimilarityLoss()(lin(x).float(), y.cuda())
    assert float(loss) == pytest.approx(float(ref), rel=0.05)


@pytest.mark.gpu
def test_few_shot_losses_on_cuda_equal_cpu() -> None:
    g = torch.Generator().manual_seed(1)
    s = torch.randn(10, 16, generator=g, dtype=torch.float64)
    sl = torch.arange(5).repeat_interleave(2)
    q = torch.randn(25, 16, generator=g, dtype=torch.float64)
    ql = torch.arange(5).repeat_interleave(5)
    crit = FewShotLoss()
    lc, _ = crit(s, sl, q, ql)
    lg, _ = crit(s.cuda(), sl.cuda(), q.cuda(), ql.cuda())
    torch.testing.assert_close(lg.cpu(), lc, rtol=0, atol=1e-9)
    torch.testing.assert_close(icnn_score(q.cuda(), ql.cuda()).cpu(), icnn_score(q, ql))
