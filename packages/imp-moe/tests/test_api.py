"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.imp_moe as imp

EXPECTED = [
    "AGDSchedule",
    "AGDTrainer",
    "Attention",
    "ClassificationHead",
    "ClassificationLoss",
    "CommonSpace",
    "CrossModalNCELoss",
    "DropToken",
    "FeedForward",
    "IMPEncoder",
    "MoEAux",
    "MoEFFN",
    "PatchEmbed1D",
    "PatchEmbed2D",
    "PatchEmbed3D",
    "PreWarmupCosine",
    "Task",
    "TokenEmbed",
    "TransformerBlock",
    "capacity",
    "classification_loss",
    "cross_modal_nce",
    "expert_forward",
    "experts_choose",
    "load_balancing_loss",
    "moe_layer_indices",
    "num_groups",
    "repeat",
    "router_z_loss",
    "saved_tensor_bytes",
    "slot_table",
    "tokens_choose",
]


def test_public_api_snapshot() -> None:
    assert sorted(imp.__all__) == sorted(EXPECTED)
    for name in imp.__all__:
        assert getattr(imp, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(imp.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.imp_moe.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.imp_moe.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
