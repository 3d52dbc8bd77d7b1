"""Devices, seeding, autocast, and the peak-memory helper."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from paperzoo.core.bench import peak_memory
from paperzoo.core.devices import autocast, resolve_device, seed_everything


def test_auto_is_cpu_without_accelerators() -> None:
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type in ("cpu", "mps")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "cuda:x"])
def test_unknown_device_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_seed_everything_repeats_all_streams() -> None:
    seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(2))
    seed_everything(5)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_autocast_bf16_on_cpu_lowers_matmul_precision() -> None:
    x = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (x @ x).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"), autocast(torch.device("cpu"), "fp8"):
        pass


def test_peak_memory_sees_a_large_temporary() -> None:
    small = peak_memory(lambda: torch.ones(10).sum(), torch.device("cpu"))
    big = peak_memory(lambda: torch.ones(1_000_000).sum(), torch.device("cpu"))
    assert small is not None
    assert big is not None
    assert big >= 4_000_000 > small


def test_peak_memory_counts_nested_allocations_once() -> None:
    def many_small() -> object:
        keep = [torch.ones(1000) for _ in range(100)]  # 400 kB alive together
        return torch.ones(1_000_000).sum() + len(keep)  # plus a 4 MB temporary

    peak = peak_memory(many_small, torch.device("cpu"))
    assert peak is not None
    assert 4_000_000 <= peak <= 4_500_000


@pytest.mark.gpu
def test_cuda_fit_matches_cpu() -> None:
    from torch import nn

    from paperzoo.core.data import make_loader
    from paperzoo.core.training import fit

    x, y = torch.randn(64, 5, dtype=torch.float64), torch.randint(0, 3, (64,))
    out = []
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        fit(
            m,
            make_loader(x, y, batch_size=16, shuffle=False),
            torch.optim.SGD(m.parameters(), lr=0.1),
            loss_fn=nn.functional.cross_entropy,
            epochs=2,
            device=dev,
        )
        out.append(torch.cat([p.detach().cpu().flatten() for p in m.parameters()]))
    torch.testing.assert_close(out[1], out[0], rtol=1e-9, atol=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_fit_is_finite(precision: str) -> None:
    from torch import nn

    from paperzoo.core.data import make_loader
    from paperzoo.core.training import fit

    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    m = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    res = fit(
        m,
        make_loader(x, y, batch_size=16, shuffle=True),
        torch.optim.Adam(m.parameters()),
        loss_fn=nn.functional.cross_entropy,
        epochs=2,
        device="cuda",
        precision=precision,
    )
    assert all(np.isfinite(h["train_loss"]) for h in res.history)
