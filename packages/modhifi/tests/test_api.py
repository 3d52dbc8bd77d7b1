"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.modhifi as modhifi

EXPECTED = [
    "LayerStats",
    "ModHiFiPruner",
    "ModHiFiUnlearner",
    "PruningPlan",
    "calibration_batches",
    "compensation",
    "csm_from_contributions",
    "edit_slices",
    "l2_channel_scores",
    "mask_input_channels",
    "random_slices",
    "recalibrate_batchnorm",
    "reconstruction_fidelity",
    "saliency",
    "score_components",
    "select_channels",
    "singleton_fidelity",
    "subset_fidelity",
    "top_slices",
]


def test_public_api_snapshot() -> None:
    assert sorted(modhifi.__all__) == sorted(EXPECTED)
    for name in modhifi.__all__:
        assert getattr(modhifi, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(modhifi.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.modhifi.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.modhifi.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
