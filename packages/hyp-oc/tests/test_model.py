"""The HypOC head end to end: separable toy data, training step parts, the Euclidean twin,
official parity settings, bad input."""

from __future__ import annotations

import pytest
import torch

from paperzoo.hyp_oc import HypOC, roc_auc


def _train(model: HypOC, reals: torch.Tensor, steps: int, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, reals.shape[0], (32,), generator=g)
        loss, _ = model.training_step(reals[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()


@pytest.mark.parametrize("geometry", ["hyperbolic", "euclidean"])
def test_hyp_ce_separates_a_tight_real_cluster_from_wide_pseudo_negatives(geometry: str) -> None:
    torch.manual_seed(0)
    f = 16
    g = torch.Generator().manual_seed(1)
    centre = torch.randn(f, generator=g)
    reals = centre + 0.2 * torch.randn(600, f, generator=g)
    model = HypOC(
        f,
        hidden=(32,),
        ball_dim=8,
        std=1.0,
        pc_weight=0.0,
        geometry=geometry,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(2),
    )
    _train(model, reals, 200)
    test_real = centre + 0.2 * torch.randn(200, f, generator=g)
    test_fake = centre + 1.0 * torch.randn(200, f, generator=g)
    s = model.score(torch.cat([test_real, test_fake]))
    y = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    assert roc_auc(s, y) >= 0.99


def test_training_step_reports_parts_and_keeps_points_in_the_clipped_ball() -> None:
    model = HypOC(10, hidden=(16,), ball_dim=4, pc_weight=0.5)
    h = torch.randn(8, 10)
    loss, parts = model.training_step(h)
    torch.testing.assert_close(loss.detach(), parts["ce"] + 0.5 * parts["pc"])
    assert float(parts["max_norm"]) <= 1.7701 + 1e-4 + 1e-6  # base point starts at 0
    assert model.score(h).shape == (8,)
    assert int(model.sampler.num_updates) == 1


def test_official_parity_settings_run() -> None:
    model = HypOC(
        10,
        hidden=(16,),
        ball_dim=4,
        mean_mode="official",
        pc_distance="official_atan",
        mobius_eps=1e-5,
    )
    loss, _ = model.training_step(torch.randn(4, 10))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_hypoc_bad_input_raises() -> None:
    model = HypOC(10, hidden=(16,), ball_dim=4)
    with pytest.raises(ValueError, match="10 features"):
        model.score(torch.randn(3, 11))
    with pytest.raises(ValueError, match="finite"):
        model.training_step(torch.full((4, 10), float("nan")))
    with pytest.raises(ValueError, match="even batch size"):
        model.training_step(torch.randn(5, 10))
    with pytest.raises(ValueError, match="geometry"):
        HypOC(10, geometry="spherical")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clip_r"):
        HypOC(10, clip_r=-1.0)
