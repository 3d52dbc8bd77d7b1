"""CUDA parity of the attack and the steppers (run by ``nox -s gpu_tests``)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from paperzoo.compsum import (
    PGD,
    AdvCompSumTrainer,
    comp_sum_loss,
    cross_entropy_objective,
    logit_diff_distance,
)

pytestmark = pytest.mark.gpu


def test_pgd_on_cuda_matches_cpu_from_a_zero_start() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 4)).double()
    x, y = torch.rand(64, 10, dtype=torch.float64), torch.randint(0, 4, (64,))
    pgd = PGD(0.1, 0.01, 10, init="none", objective=cross_entropy_objective)
    cpu = pgd.perturb(model, x, y)
    gpu = pgd.perturb(copy.deepcopy(model).cuda(), x.cuda(), y.cuda()).cpu()
    # a sign step can flip where a gradient entry is ~0: compare almost all entries exactly
    assert float((gpu - cpu).abs().gt(1e-9).double().mean()) < 0.01


def test_adv_comp_sum_step_on_cuda_is_finite_with_a_cuda_generator() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4)).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    attack = PGD(0.1, 0.025, 5, objective=logit_diff_distance, generator=gen)
    trainer = AdvCompSumTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), attack=attack)
    x, y = torch.rand(32, 10, device="cuda"), torch.randint(0, 4, (32,), device="cuda")
    out = trainer.step(x, y)
    assert all(bool(torch.isfinite(v)) for v in out.values())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_comp_sum_under_autocast_is_finite(dtype: torch.dtype) -> None:
    logits = torch.randn(16, 10, device="cuda", requires_grad=True)
    y = torch.randint(0, 10, (16,), device="cuda")
    for tau in (0.0, 0.5, 1.5, 2.0):
        with torch.autocast("cuda", dtype=dtype):
            loss = comp_sum_loss(logits, y, tau)
        loss.float().backward()
        assert bool(torch.isfinite(loss)) and logits.grad is not None
        assert bool(torch.isfinite(logits.grad).all())
        logits.grad = None
