"""The reproduction: config validation, its helpers, and a tiny end-to-end run."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, run_experiment
from paperzoo.dis_vs_gen.experiment import EXPERIMENT, DisVsGenConfig, geometric_grid, loglog_slope


def test_bad_config_values_are_user_errors() -> None:
    for kw in (
        {"C": 0.0},
        {"sim_points": 1},
        {"sim_classes": (1,)},
        {"threads": 0},
        {"var_smoothing": -1.0},
    ):
        with pytest.raises(UserError):
            DisVsGenConfig(**kw)  # type: ignore[arg-type]


def test_geometric_grid_spans_the_range() -> None:
    g = geometric_grid(4, 8000, 15)
    assert g[0] == 4 and g[-1] == 8000 and g == sorted(set(g)) and len(g) == 15


def test_loglog_slope_of_a_power_law() -> None:
    assert math.isclose(loglog_slope([1.0, 2.0, 4.0], [3.0, 6.0, 12.0]), 1.0)
    assert math.isnan(loglog_slope([1.0, 2.0], [1.0, math.inf]))


def test_tiny_run_returns_rows_checks_and_curves() -> None:
    cfg = DisVsGenConfig(
        sim_classes=(2,),
        sim_features=(4, 8),
        sim_points=4,
        sim_max_factor=5,
        sim_test=200,
        hard_features=(),
        probe=False,
    )
    res = run_experiment(
        EXPERIMENT, cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    )
    names = {r.metric for r in res.rows}
    assert "easy K=2 n=4: asymptotic error" in names
    assert len(res.checks) == 4 and "m_eps_K2" in res.curves
