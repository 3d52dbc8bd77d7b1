"""The steppers: their loss equals the formula at the attack point, both doors, fit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.compsum import (
    PGD,
    AdvCompSumTrainer,
    PGDATTrainer,
    TRADESTrainer,
    cross_entropy_objective,
    logit_diff_distance,
    robust_accuracy,
    smooth_adv_comp_sum_loss,
    trades_kl_objective,
)
from paperzoo.core.data import make_loader
from paperzoo.core.training import fit


def _setup(seed: int = 0) -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(3, 8, generator=g)
    y = torch.randint(0, 3, (96,), generator=g)
    x = (centers[y] + 0.05 * torch.randn(96, 8, generator=g)).clamp(0, 1)
    return model, x, y


def _attack(objective: object, seed: int = 0, init: str = "normal") -> PGD:
    return PGD(
        0.05, 0.02, 4, init=init, objective=objective, generator=torch.Generator().manual_seed(seed)
    )  # type: ignore[arg-type]


def test_adv_comp_sum_loss_is_the_smooth_loss_at_the_attack_point() -> None:
    model, x, y = _setup()
    trainer = AdvCompSumTrainer(model, tau=1.5, nu=0.5, attack=_attack(logit_diff_distance))
    out = trainer.losses(model, x, y)
    x_adv = _attack(logit_diff_distance).perturb(model, x, y)
    ref = smooth_adv_comp_sum_loss(model(x), model(x_adv), y, 1.5, 0.5)
    torch.testing.assert_close(out["loss"], ref)
    assert set(out) == {"loss", "clean", "reg"} and float(out["reg"]) > 0


def test_trades_loss_is_ce_plus_beta_batchmean_kl() -> None:
    model, x, y = _setup()
    out = TRADESTrainer(model, beta=6.0, attack=_attack(trades_kl_objective)).losses(model, x, y)
    x_adv = _attack(trades_kl_objective).perturb(model, x, y)
    kl = F.kl_div(model(x_adv).log_softmax(1), model(x).softmax(1), reduction="batchmean")
    torch.testing.assert_close(out["loss"], F.cross_entropy(model(x), y) + 6.0 * kl)


def test_pgd_at_loss_is_cross_entropy_at_the_attack_point() -> None:
    model, x, y = _setup()
    out = PGDATTrainer(model, attack=_attack(cross_entropy_objective, init="uniform")).losses(
        model, x, y
    )
    x_adv = _attack(cross_entropy_objective, init="uniform").perturb(model, x, y)
    torch.testing.assert_close(out["loss"], F.cross_entropy(model(x_adv), y))


@pytest.mark.parametrize("kind", ["acs", "trades", "pgd_at"])
def test_step_updates_the_model_and_training_improves_robust_accuracy(kind: str) -> None:
    model, x, y = _setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = {
        "acs": lambda: AdvCompSumTrainer(model, opt, nu=0.5, attack=_attack(logit_diff_distance)),
        "trades": lambda: TRADESTrainer(model, opt, attack=_attack(trades_kl_objective)),
        "pgd_at": lambda: PGDATTrainer(
            model, opt, attack=_attack(cross_entropy_objective, init="uniform")
        ),
    }[kind]()
    test_attack = PGD(0.05, 0.01, 10, init="none", objective=cross_entropy_objective)
    before = robust_accuracy(model, [(x, y)], test_attack)
    for _ in range(30):
        parts = trainer.step(x, y)
        assert all(not v.requires_grad for v in parts.values())
    assert robust_accuracy(model, [(x, y)], test_attack) > max(before, 0.8)


def test_fit_step_trains_inside_core_fit() -> None:
    model, x, y = _setup()
    trainer = AdvCompSumTrainer(model, nu=0.25, attack=_attack(logit_diff_distance))
    loader = make_loader(x, y, batch_size=32, shuffle=True, seed=0)
    res = fit(
        model,
        loader,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        step_fn=trainer.fit_step,
        epochs=5,
        device="cpu",
        progress=False,
    )
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_large_nu_collapses_training_to_a_constant_classifier() -> None:
    """The spec's pitfall: nu well above 1 drives the regulariser to 0 by flattening the model."""
    model, x, y = _setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = AdvCompSumTrainer(model, opt, nu=8.0, attack=_attack(logit_diff_distance))
    for _ in range(30):
        trainer.step(x, y)
    assert robust_accuracy(model, [(x, y)], None) < 0.6


def test_step_without_optimizer_raises() -> None:
    model, x, y = _setup()
    with pytest.raises(ValueError, match="optimizer"):
        AdvCompSumTrainer(model, attack=_attack(logit_diff_distance)).step(x, y)
