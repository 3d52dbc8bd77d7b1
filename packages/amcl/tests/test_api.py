"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.amcl as amcl

EXPECTED = [
    "AMCLBarlowTwinsLoss",
    "AMCLConfig",
    "AMCLInfoNCELoss",
    "AMCLMoCoLoss",
    "AMCLNTXentLoss",
    "AMCLSimCLR",
    "CollapseGuard",
    "CollapseWarning",
    "ConstantTemperature",
    "MultiHeadProjector",
    "PairTemperature",
    "TemperatureNet",
    "amcl_barlow_twins_loss",
    "amcl_infonce_loss",
    "amcl_moco_loss",
    "amcl_ntxent_loss",
    "mean_pairwise_cosine",
    "omega",
]


def test_public_api_snapshot() -> None:
    assert sorted(amcl.__all__) == sorted(EXPECTED)
    for name in amcl.__all__:
        assert getattr(amcl, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(amcl.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.amcl.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.amcl.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
