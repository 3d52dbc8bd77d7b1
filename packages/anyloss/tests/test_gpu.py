"""CUDA: the losses (module counters included) and a training step, compared with the CPU."""

from __future__ import annotations

import pytest
import torch

from paperzoo.anyloss import AnyLoss, OneVsRestAnyLoss, anyloss

pytestmark = pytest.mark.gpu


def test_modules_run_on_cuda_without_being_moved_and_match_the_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, generator=g)
    y = (torch.rand(64, generator=g) < 0.2).long()
    y[:2] = torch.tensor([0, 1])
    for metric in ("f1", "accuracy", "gmean", "balanced_accuracy"):
        m = AnyLoss(metric)  # type: ignore[arg-type]
        out = m(x.cuda(), y.cuda())
        assert m.seen_batches.item() == 1
        torch.testing.assert_close(out.cpu(), anyloss(x, y, metric), rtol=1e-5, atol=1e-6)  # type: ignore[arg-type]
    z = torch.randn(30, 4, generator=g)
    t = torch.arange(30) % 4
    ovr = OneVsRestAnyLoss("f1", 4)
    torch.testing.assert_close(ovr(z.cuda(), t.cuda()).cpu(), OneVsRestAnyLoss("f1", 4)(z, t))


def test_the_reproduction_runs_on_cuda() -> None:
    import dataclasses

    from paperzoo.anyloss.experiment import EXPERIMENT, run
    from paperzoo.core.experiments import RunContext

    cfg = dataclasses.replace(
        EXPERIMENT.make_config("smoke"), datasets="imb5", n_samples=300, epochs=1, l_sweep=False
    )
    res = run(cfg, RunContext(seeds=[0], device=torch.device("cuda"), budget="smoke"))
    assert res.rows and all(0.0 <= v <= 1.0 for r in res.rows for v in r.values)
