"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.adv_mdp as adv_mdp

EXPECTED = [
    "AdversaryKind",
    "DilatedBonusPO",
    "FullInfoPO",
    "Learner",
    "LinearMDP",
    "LogBarrierPO",
    "MagnitudeReducedPO",
    "NaivePO",
    "RegretTracker",
    "RunResult",
    "Simulator",
    "Trajectory",
    "UniformPolicy",
    "bonus",
    "exact_covariance",
    "exact_inverse",
    "fit_loglog_slope",
    "hedge",
    "linear_q_estimate",
    "log_barrier",
    "magnitude_reduced",
    "make_adversary",
    "mgr_expectation",
    "mgr_inverse",
    "regularized_inverse",
    "run",
]


def test_public_api_snapshot() -> None:
    assert sorted(adv_mdp.__all__) == sorted(EXPECTED)
    for name in adv_mdp.__all__:
        if name == "AdversaryKind":  # a typing.Literal alias: documented in the module
            continue
        assert getattr(adv_mdp, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(adv_mdp.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.adv_mdp.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.adv_mdp.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
