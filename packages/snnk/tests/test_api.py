"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.snnk as snnk

EXPECTED = [
    "GAUSSIAN",
    "RIDGE_GRID",
    "URF",
    "AdaptedModule",
    "BundledLayer",
    "Cos",
    "Exp",
    "FeatureRangeError",
    "FullyBundledNetwork",
    "GaussianActivation",
    "HoulsbyAdapter",
    "LoRALinear",
    "PositiveRandomFeatures",
    "ReLURandomFeatures",
    "RidgeCV",
    "SNNKAdapter",
    "SNNKLinear",
    "Sin",
    "SpectralSpec",
    "activation_function",
    "add_adapters",
    "add_lora",
    "add_snnk_adapters",
    "arccos_kernel",
    "bundle",
    "orthogonal_gaussian",
    "param_features",
    "positive_features",
    "relu_features",
    "ridge_cv",
    "ridge_fit",
    "trainable_parameters",
]


def test_public_api_snapshot() -> None:
    assert sorted(snnk.__all__) == sorted(EXPECTED)
    for name in snnk.__all__:
        obj = getattr(snnk, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(snnk.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.snnk.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.snnk.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
