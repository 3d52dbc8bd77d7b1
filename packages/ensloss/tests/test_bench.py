"""The benchmark's reference re-expression is the reference algorithm, and ours matches it."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.bench import BenchContext
from paperzoo.ensloss import EnsLoss
from paperzoo.ensloss.bench import reference_ensloss, run_bench


def test_ours_gives_the_reference_algorithms_update() -> None:
    x = 2.0 * torch.randn(300, 1, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 2, (300, 1), generator=torch.Generator().manual_seed(1)).float()
    xr = x.clone().requires_grad_(True)
    torch.manual_seed(5)  # the reference draws from the global RNG
    ref = reference_ensloss(xr, t)
    ref.backward()
    xo = x.clone().requires_grad_(True)
    ours = EnsLoss(generator=torch.Generator().manual_seed(5))(xo, t)
    ours.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)
    assert xo.grad is not None and xr.grad is not None
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_quick_bench_times_every_case() -> None:
    rows = run_bench(BenchContext(device=torch.device("cpu"), quick=True))
    cases = {r.case for r in rows}
    assert cases == {
        "loss fwd+bwd, B=128",
        "loss fwd+bwd, B=1024",
        "TabMLP3 (784-256x3-1) SGD step, B=128",
    }
    assert all(r.median_s > 0 for r in rows)
    assert all(r.ratio == 1.0 for r in rows if "(ours)" in r.impl)
