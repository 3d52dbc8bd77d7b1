"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.unpg as unpg

EXPECTED = [
    "ArcFaceHead",
    "CosFaceHead",
    "MarginHead",
    "UNPGLoss",
    "box_whisker_filter",
    "eer",
    "extra_negative_lse",
    "in_batch_negative_similarities",
    "margin_to_pml_degrees",
    "negative_pair_similarities",
    "official",
    "tar_at_far",
    "unpg_cross_entropy",
    "unpg_loss",
    "verification_scores",
    "wdfs_fraction",
    "weight_to_pml",
    "whisker_mask",
]


def test_public_api_snapshot() -> None:
    assert sorted(unpg.__all__) == sorted(EXPECTED)
    for name in unpg.__all__:
        assert getattr(unpg, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(unpg.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.unpg.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.unpg.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
