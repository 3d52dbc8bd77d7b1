"""CUDA equals CPU, labels may stay on the host, and half-precision autocast stays finite (skipped
without CUDA by the core plugin)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    FewShotLoss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    icnn_score,
    proto_triplet_loss,
    prototypes,
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
    lc = crit(s, sl, q, ql)["loss"]
    lg = crit(s.cuda(), sl.cuda(), q.cuda(), ql.cuda())["loss"]
    torch.testing.assert_close(lg.cpu(), lc, rtol=0, atol=1e-9)
    torch.testing.assert_close(icnn_score(q.cuda(), ql.cuda()).cpu(), icnn_score(q, ql))


def _small_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3)


@pytest.mark.gpu
def test_labels_on_the_host_are_accepted_with_cuda_embeddings(
    far_episode: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    e, y = _small_batch()
    ec = e.double()
    pc = MultiSimilarityMiner()(ec, y)
    pg = MultiSimilarityMiner()(ec.cuda(), y)  # labels stay on the CPU
    for a, b in zip(pc, pg, strict=True):
        torch.testing.assert_close(b.cpu(), a)
    s, sl, q, ql = far_episode
    lc = FewShotLoss()(s.double(), sl, q.double(), ql)["loss"]
    lg = FewShotLoss()(s.double().cuda(), sl, q.double().cuda(), ql)["loss"]
    torch.testing.assert_close(lg.cpu(), lc, rtol=0, atol=1e-9)
    s64, q64 = s.double(), q.double()
    protos = prototypes(s64.cuda(), sl, 5)
    assert protos.device.type == "cuda"
    ptg = proto_triplet_loss(q64.cuda(), ql, protos)
    ptc = proto_triplet_loss(q64, ql, prototypes(s64, sl, 5))
    torch.testing.assert_close(ptg.cpu(), ptc, rtol=0, atol=1e-9)


@pytest.mark.gpu
def test_reference_set_on_another_device_raises_naming_both() -> None:
    e, y = _small_batch()
    with pytest.raises(ValueError, match="ref_embeddings is on cpu but embeddings is on cuda"):
        MultiSimilarityLoss()(e.cuda(), y.cuda(), e, y)
