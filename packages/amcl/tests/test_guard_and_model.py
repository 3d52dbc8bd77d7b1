"""The collapse guard, the multi-head projector and the AMCL-SimCLR module."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from paperzoo.amcl import (
    AMCLConfig,
    AMCLSimCLR,
    CollapseGuard,
    CollapseWarning,
    ConstantTemperature,
    MultiHeadProjector,
    PairTemperature,
    mean_pairwise_cosine,
)


def test_mean_pairwise_cosine_matches_a_pair_loop() -> None:
    z = torch.randn(2, 5, 3, dtype=torch.float64)
    u = torch.nn.functional.normalize(z, dim=-1)
    ref = torch.stack(
        [
            torch.stack([u[c, i] @ u[c, j] for i in range(5) for j in range(5) if i != j]).mean()
            for c in range(2)
        ]
    )
    torch.testing.assert_close(mean_pairwise_cosine(z), ref, rtol=1e-12, atol=1e-12)


def test_collapse_guard_fires_on_collapsed_projections_only() -> None:
    guard = CollapseGuard(threshold=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not guard(torch.randn(3, 64, 16))
    collapsed = torch.ones(3, 64, 16) + 0.01 * torch.randn(3, 64, 16)
    with pytest.warns(CollapseWarning, match="collapsed"):
        assert guard(collapsed)
    assert guard.fired and len(guard.history) == 2


def test_projector_heads_are_independent_linear_stacks() -> None:
    torch.manual_seed(0)
    proj = MultiHeadProjector(5, out_dim=4, num_heads=3, hidden=7, normalize=False).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    z = proj(x)
    for c in range(3):
        ref = torch.relu(x @ proj.w_1[c] + proj.b_1[c]) @ proj.w_2[c] + proj.b_2[c]
        torch.testing.assert_close(z[c], ref, rtol=1e-12, atol=1e-12)
    unit = MultiHeadProjector(5, out_dim=4, num_heads=3, hidden=7).double()
    assert torch.allclose(unit(x).norm(dim=-1), torch.ones(3, 6, dtype=torch.float64))


def test_simclr_config_is_plain_ntxent_and_official_preset() -> None:
    cfg = AMCLConfig.simclr(0.5)
    assert isinstance(cfg.temperature(), ConstantTemperature) and cfg.num_heads == 1
    off = AMCLConfig.official()
    t = off.temperature()
    assert isinstance(t, PairTemperature) and (t.tau_min, t.tau_max, t.form, t.hidden) == (
        1e-5,
        2.0,
        "dot",
        128,
    )
    assert (off.negatives, off.topk, off.beta) == ("topk", 100, 1e-4)
    assert AMCLConfig.official(beta=0.1).beta == 0.1


def test_amcl_simclr_trains_and_reports_stats() -> None:
    torch.manual_seed(0)
    model = AMCLSimCLR(
        nn.Sequential(nn.Linear(10, 12), nn.ReLU()), 12, AMCLConfig(out_dim=8, head_hidden=16)
    )
    x = torch.randn(16, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        loss, stats = model(x + 0.05 * torch.randn_like(x), x + 0.05 * torch.randn_like(x))
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    assert stats["tau_pos"].shape == (3,)
