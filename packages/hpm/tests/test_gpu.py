"""CUDA == CPU and mixed precision (run by nox -s gpu_tests; skipped without CUDA by the core)."""

from __future__ import annotations

import copy

import pytest
import torch

from paperzoo.hpm import HPM, hard_patch_mask, random_mask, relative_loss_prediction_loss

from .conftest import tiny_model

pytestmark = pytest.mark.gpu


def test_model_and_losses_on_cuda_match_cpu() -> None:
    model = tiny_model()
    imgs = torch.rand(4, 2, 8, 8)
    mask = random_mask(4, 16, 0.75, torch.Generator().manual_seed(0))
    cpu = model(imgs, mask)
    gpu = copy.deepcopy(model).cuda()(imgs.cuda(), mask.cuda())
    torch.testing.assert_close(gpu.pred.cpu(), cpu.pred, rtol=1e-4, atol=1e-5)
    assert gpu.loss_pred is not None and cpu.loss_pred is not None
    torch.testing.assert_close(gpu.loss_pred.cpu(), cpu.loss_pred, rtol=1e-4, atol=1e-5)
    pred, target = torch.randn(8, 37), torch.rand(8, 37)
    torch.testing.assert_close(
        relative_loss_prediction_loss(pred.cuda(), target.cuda()).cpu(),
        relative_loss_prediction_loss(pred, target),
        rtol=1e-5,
        atol=1e-6,
    )


def test_hard_mask_on_cuda_keeps_counts_and_top_patches() -> None:
    scores = torch.randn(64, 49, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    mask = hard_patch_mask(scores, 0.75, 0.5, gen)
    assert mask.is_cuda and (mask.sum(1) == 37).all()
    assert mask.gather(1, scores.topk(18, dim=1).indices).all()


def test_hpm_step_on_cuda_matches_cpu_with_the_same_mask() -> None:
    model = tiny_model()
    imgs = torch.rand(4, 2, 8, 8)
    cpu = HPM(copy.deepcopy(model))
    gpu = HPM(copy.deepcopy(model).cuda())
    # the masks come from the teacher; give both the same CPU generator stream
    cpu.generator = torch.Generator().manual_seed(1)
    mask_cpu = cpu.make_mask(imgs, 0.0)
    out_c = cpu.model(imgs, mask_cpu)
    out_g = gpu.model(imgs.cuda(), mask_cpu.cuda())
    torch.testing.assert_close(
        gpu.model.reconstruction_loss(imgs.cuda(), out_g).cpu(),
        cpu.model.reconstruction_loss(imgs, out_c),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_hpm_step_under_autocast_is_finite(dtype: torch.dtype) -> None:
    model = tiny_model().cuda()
    hpm = HPM(model, generator=torch.Generator(device="cuda").manual_seed(0))
    imgs = torch.rand(8, 2, 8, 8, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        out = hpm.step(imgs, 9, 10)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]).all()
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    assert hpm.update_teacher(9, 10) is not None


def test_hard_mask_with_a_cpu_generator_on_cuda_scores_equals_the_cpu_mask() -> None:
    scores = torch.randn(16, 49)
    cpu = hard_patch_mask(scores, 0.75, 0.5, torch.Generator().manual_seed(3))
    gpu = hard_patch_mask(scores.cuda(), 0.75, 0.5, torch.Generator().manual_seed(3))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


def test_hpm_built_on_cpu_then_moved_to_cuda_trains() -> None:
    """As in ``fit`` (and the reproduction with ``--device cuda``): HPM is built before the model
    moves; the teacher must follow it."""
    model = tiny_model()
    hpm = HPM(model, generator=torch.Generator().manual_seed(0))
    model.cuda()
    out = hpm.step(torch.rand(4, 2, 8, 8, device="cuda"), 9, 10)
    out["loss"].backward()
    assert hpm.update_teacher(9, 10) is not None and hpm.teacher is not None
    assert hpm.teacher.device.type == "cuda" and out["mask"].is_cuda


def test_smoke_reproduction_with_diagnostics_runs_on_cuda() -> None:
    from paperzoo.core.experiments import RunContext, find_row, get_experiment

    exp = get_experiment("hpm")
    sets = ["n_train=64", "n_test=32", "epochs=1", "batch_size=32", "diagnostics=true"]
    ctx = RunContext(seeds=[0], device=torch.device("cuda"), budget="smoke")
    res = exp.run(exp.make_config("smoke", sets), ctx)
    v = find_row(res.rows, "HPM", "ratio_oracle_expected_loss_a0.5").mean
    assert torch.isfinite(torch.tensor(v)) and v > 0
