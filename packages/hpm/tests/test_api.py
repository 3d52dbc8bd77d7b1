"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.hpm as hpm

EXPECTED = [
    "HPM",
    "AbsoluteLossPredictionLoss",
    "EMATeacher",
    "MAEOutput",
    "MaskedAutoencoderViT",
    "RelativeLossPredictionLoss",
    "absolute_loss_prediction_loss",
    "check_mask",
    "easy_to_hard_alpha",
    "encoder_features",
    "hard_patch_mask",
    "knn_accuracy",
    "linear_probe_accuracy",
    "num_masked",
    "patchify",
    "per_patch_mse",
    "random_mask",
    "relative_loss_prediction_loss",
    "sincos_pos_embed_2d",
    "unpatchify",
]


def test_public_api_snapshot() -> None:
    assert sorted(hpm.__all__) == sorted(EXPECTED)
    for name in hpm.__all__:
        obj = getattr(hpm, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(hpm.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.hpm.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.hpm.bench:BENCHMARK" for ep in eps.select(group="paperzoo.benchmarks")
    )
