"""CUDA results equal CPU results; half-precision autocast stays finite (run by nox -s gpu_tests)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.ldr import ALDRKLLoss, ldr_kl_loss


@pytest.mark.gpu
@pytest.mark.parametrize("normalize", ["softplus_mean", "l1", "none"])
def test_ldr_kl_on_cuda_matches_cpu(normalize: str) -> None:
    g = torch.Generator().manual_seed(0)
    f = 3 * torch.randn(64, 1000, generator=g)
    y = torch.randint(0, 1000, (64,), generator=g)
    fc = f.cuda().requires_grad_(True)
    fh = f.clone().requires_grad_(True)
    ldr_kl_loss(fc, y.cuda(), normalize=normalize).backward()
    ldr_kl_loss(fh, y, normalize=normalize).backward()
    assert fc.grad is not None and fh.grad is not None
    torch.testing.assert_close(fc.grad.cpu(), fh.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_aldr_table_lives_on_cuda_and_matches_cpu() -> None:
    g = torch.Generator().manual_seed(1)
    f = 3 * torch.randn(32, 10, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    idx = torch.randperm(100, generator=g)[:32]
    cpu, gpu = ALDRKLLoss(100), ALDRKLLoss(100).cuda()
    for _ in range(3):
        lc = cpu(f, y, idx)
        lg = gpu(f.cuda(), y.cuda(), idx.cuda())
    assert gpu.lambdas.device.type == "cuda"
    torch.testing.assert_close(lg.cpu(), lc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gpu.lambdas.cpu(), cpu.lambdas, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_training_step_under_autocast_is_finite(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(20, 10).cuda()
    aldr = ALDRKLLoss(64).cuda()
    x = torch.randn(64, 20, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        logits = model(x)
        loss = ldr_kl_loss(logits, y) + aldr(logits, y, torch.arange(64, device="cuda"))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.weight.grad is not None and bool(torch.isfinite(model.weight.grad).all())
    assert bool(torch.isfinite(aldr.lambdas).all())


@pytest.mark.gpu
def test_aldr_duplicate_indices_keep_the_last_occurrence_on_cuda() -> None:
    """A plain index_copy_ leaves the winner of duplicate rows to the CUDA scheduler."""
    g = torch.Generator().manual_seed(2)
    batch, n = 4096, 8
    f = 3 * torch.randn(batch, 10, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    idx = torch.randint(0, n, (batch,), generator=g)
    loss_fn = ALDRKLLoss(n).cuda()
    loss_fn(f.cuda(), y.cuda(), idx.cuda())
    assert loss_fn.last_lambdas is not None
    new = loss_fn.last_lambdas.cpu()
    positions = torch.arange(batch)
    for row in range(n):
        last = int(positions[idx == row].max())
        assert loss_fn.lambdas[row].item() == new[last].item()


@pytest.mark.gpu
@pytest.mark.parametrize("normalize", ["softplus_mean", "l1", "none"])
def test_half_zero_and_very_negative_logits_are_finite_on_cuda(normalize: str) -> None:
    f = torch.zeros(4, 5, device="cuda", dtype=torch.float16)
    f[2:] = -30.0
    y = torch.tensor([0, 1, 2, 3], device="cuda")
    loss = ldr_kl_loss(f, y, normalize=normalize) + ALDRKLLoss(4, normalize=normalize).cuda()(
        f, y, torch.arange(4, device="cuda")
    )
    assert loss.dtype == torch.float16
    assert bool(torch.isfinite(loss))
