"""The reproduction's selection: tuned on the tuning seed only, grids as configured, subsets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from paperzoo.core.experiments import RunContext
from paperzoo.neucb.experiment import METHODS, NeuCBConfig, run_experiment

TINY = NeuCBConfig(
    n_rounds=30,
    tune_rounds=10,
    width=8,
    gammas=(10.0, 100.0),
    lrs=(0.1,),
    nus=(0.1,),
    epsilons=(0.1,),
    lin_gammas=(10.0, 100.0),
    lin_lams=(0.1, 1.0),
)


def _ctx() -> RunContext:
    return RunContext(seeds=[0, 1], device=torch.device("cpu"), budget="smoke")


def test_a_subset_is_tuned_on_its_full_grid_and_reports_no_checks():
    cfg = dataclasses.replace(TINY, methods=("LinSquareCB", "Uniform"))
    res = run_experiment(cfg, _ctx())
    assert {r.method for r in res.rows} == {"LinSquareCB", "Uniform"}
    assert res.checks == []
    tried = res.extra["tuning"]["LinSquareCB"]
    assert sorted((t["gamma"], t["lam"]) for t in tried) == [
        (10.0, 0.1),
        (10.0, 1.0),
        (100.0, 0.1),
        (100.0, 1.0),
    ]
    best = min(tried, key=lambda t: t["regret"])
    assert res.extra["tuned"]["LinSquareCB"] == {"gamma": best["gamma"], "lam": best["lam"]}
    # the regret at each third of the stream is reported, and it never decreases
    at10, at20, final = (
        next(r for r in res.rows if r.method == "LinSquareCB" and r.metric == m)
        for m in ("cum_regret_at10", "cum_regret_at20", "cum_regret")
    )
    assert all(a <= b <= c for a, b, c in zip(at10.values, at20.values, final.values, strict=True))


def test_the_tuning_seed_is_not_an_evaluation_seed():
    assert NeuCBConfig().tune_seed not in range(5)


def test_unknown_methods_are_rejected():
    with pytest.raises(ValueError, match="subset"):
        run_experiment(dataclasses.replace(TINY, methods=("NeuFastCB", "Oracle")), _ctx())


def test_every_agent_gets_a_grid_of_the_same_size():
    cfg = NeuCBConfig()
    sizes = {
        "NeuFastCB": len(cfg.gammas) * len(cfg.lrs),
        "NeuralUCB/NeuralTS": len(cfg.nus) * len(cfg.lrs),
        "NeuralEpsGreedy": len(cfg.epsilons) * len(cfg.lrs),
        "LinSquareCB": len(cfg.lin_gammas) * len(cfg.lin_lams),
    }
    assert len(set(sizes.values())) == 1, sizes
    assert set(cfg.methods) == set(METHODS)
