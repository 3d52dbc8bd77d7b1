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
    guard = CollapseGuard(threshold=0.9, start=0)
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


def _digits_toy(negatives: str) -> tuple[float, CollapseGuard]:
    """Spec test 11, scaled: 300 Adam steps of AMCL-SimCLR (C = 3, d' = 32, batch 64, five
    augmentations) on the bundled 8x8 digits; the held-out projections' mean pairwise cosine."""
    from paperzoo.amcl.augment import AUGMENTATIONS, augment
    from paperzoo.core.data import load_dataset

    split = load_dataset("digits", seed=0)
    x, xt = split.x_train.view(-1, 8, 8), split.x_test.view(-1, 8, 8)
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()
    )
    guard = CollapseGuard(threshold=0.9, every=50, start=150)
    model = AMCLSimCLR(
        backbone, 128, AMCLConfig(out_dim=32, head_hidden=64, negatives=negatives), guard=guard
    )  # type: ignore[arg-type]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        xb = x[torch.randint(0, x.shape[0], (64,), generator=g)]
        loss, _ = model(augment(xb, AUGMENTATIONS, g), augment(xb, AUGMENTATIONS, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(mean_pairwise_cosine(model.project(xt)).max()), guard


@pytest.mark.slow
def test_default_logsumexp_keeps_projections_apart_and_max_mode_collapses() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        cos, guard = _digits_toy("logsumexp")
    assert cos < 0.6 and not guard.fired
    with pytest.warns(CollapseWarning):
        cos_max, guard_max = _digits_toy("max")
    assert cos_max > 0.9 and guard_max.fired  # documented behaviour of the table's form
