"""The registered reproduction runs at its smoke budget and rejects bad configs."""

from __future__ import annotations

import logging

import pytest
import torch

from paperzoo.adv_mdp.experiment import EXPERIMENT, AdvMDPConfig
from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, get_experiment


def test_experiment_is_registered_with_three_budgets() -> None:
    assert get_experiment("adv-mdp") is EXPERIMENT
    assert EXPERIMENT.seeds["quick"] >= 3
    for budget in ("smoke", "quick", "full"):
        EXPERIMENT.make_config(budget)


def test_smoke_run_reports_every_method_and_check() -> None:
    cfg = EXPERIMENT.make_config("smoke", ["Ks=(10,20)", "tune_episodes=10"])
    ctx = RunContext(
        seeds=[0], device=torch.device("cpu"), budget="smoke", log=logging.getLogger("t")
    )
    result = EXPERIMENT.run(cfg, ctx)
    methods = {r.method for r in result.rows}
    assert methods == set(cfg.methods) and "NaivePO" not in methods
    assert len(result.checks) == 5
    assert "regret_vs_K" in result.curves
    assert {"DilatedBonusPO", "FullInfoPO"} <= set(result.extra["tuned"])


def test_tuning_seed_may_not_be_an_evaluation_seed() -> None:
    cfg = EXPERIMENT.make_config("smoke", ["tune_seed=0"])
    ctx = RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    with pytest.raises(ValueError, match="tune_seed"):
        EXPERIMENT.run(cfg, ctx)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("Ks", (100,), "Ks: expected two or more"),
        ("c_e", 0.0, "c_e: expected"),
        ("adversary", "adaptive", "adversary"),
        ("methods", ("Oracle",), "methods: expected"),
        ("n_actions", 1, "n_actions: expected"),
        ("luo_c_g", (), "luo_c_g: expected at least one"),
    ],
)
def test_bad_config_values_are_rejected(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdvMDPConfig(**{field: value})  # type: ignore[arg-type]


def test_bad_set_override_is_a_user_error() -> None:
    with pytest.raises(UserError):
        EXPERIMENT.make_config("smoke", ["c_b=-1"])
