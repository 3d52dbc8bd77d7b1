"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.dhkd as dhkd

EXPECTED = [
    "METHODS",
    "AuxHead",
    "BinaryKLLoss",
    "BinaryKLNormLoss",
    "DHKDLoss",
    "DualHeadClassifier",
    "DualHeadOutput",
    "GradAlign",
    "KDLoss",
    "LossBreakdown",
    "Method",
    "NonLinearHead",
    "add_aux_head",
    "binary_kl",
    "binary_kl_norm",
    "conv1d_teacher",
    "cross_entropy",
    "distill",
    "distillation_step",
    "gradient_cosine",
    "kd_loss",
    "log_cosh",
    "step_decay",
    "train_teacher",
]


def test_public_api_snapshot() -> None:
    assert sorted(dhkd.__all__) == sorted(EXPECTED)
    for name in dhkd.__all__:
        if name in ("METHODS", "AuxHead", "Method"):  # a tuple and type aliases
            continue
        assert getattr(dhkd, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(dhkd.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.dhkd.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.dhkd.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
