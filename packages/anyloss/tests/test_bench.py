"""The benchmark is registered and every impl it races runs (timings are not tested)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.anyloss import hybrid_anyloss
from paperzoo.anyloss.bench import BENCHMARK, OURS, _impls
from paperzoo.core.bench import get_benchmark


def test_registered() -> None:
    assert get_benchmark("anyloss") is BENCHMARK


def test_every_impl_runs_and_returns_a_gradient() -> None:
    impls = _impls(64, torch.device("cpu"))
    assert OURS in impls and "BCE with logits (baseline)" in impls
    for name, fn in impls.items():
        (grad,) = fn()  # type: ignore[misc]
        assert grad.shape == (64,) and bool(torch.isfinite(grad).all()), name


def test_the_reproductions_soft_f1_ablation_is_the_peers_soft_f1_loss() -> None:
    """``hybrid_anyloss(r=1)`` (no approximation function) equals pytorch-optimizer's SoftF1Loss
    up to its eps terms, so the reproduction's "soft-F1 (no A)" row stands for the peer."""
    peer_module = pytest.importorskip("pytorch_optimizer")
    g = torch.Generator().manual_seed(0)
    p = torch.rand(200, generator=g, dtype=torch.float64)
    y = (torch.rand(200, generator=g) < 0.2).double()
    ours = hybrid_anyloss(p, y, "f1", r=1.0, input_type="probs")
    theirs = peer_module.SoftF1Loss()(p, y)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=0, atol=1e-5)
