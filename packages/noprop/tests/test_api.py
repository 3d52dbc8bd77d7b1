"""Public-API snapshot: fails when the exported surface changes by accident."""

from __future__ import annotations

import importlib.resources

import paperzoo.noprop as noprop

EXPECTED = [
    "ConvDenoiseBlock",
    "CosineSchedule",
    "DTDenoiseLoss",
    "DiscreteSchedule",
    "LabelEmbedding",
    "LearnableSchedule",
    "MLPDenoiseBlock",
    "NoPropCT",
    "NoPropDT",
    "NoPropFM",
    "SinusoidalTimeEmbedding",
    "__version__",
    "backprop_chain_loss",
    "dt_denoise_loss",
    "kl_to_standard_normal",
    "posterior_coeffs",
    "select_prototypes",
    "train_blocks_vmapped",
]


def test_public_api_is_the_snapshot() -> None:
    assert sorted(noprop.__all__) == sorted(EXPECTED)
    for name in noprop.__all__:
        assert hasattr(noprop, name), name


def test_package_is_typed() -> None:
    assert importlib.resources.files("paperzoo.noprop").joinpath("py.typed").is_file()


def test_experiment_and_benchmark_are_registered() -> None:
    from paperzoo.core.bench import get_benchmark
    from paperzoo.core.experiments import get_experiment

    exp = get_experiment("noprop")
    assert exp.name == "noprop" and exp.seeds["quick"] >= 3
    assert get_benchmark("noprop").name == "noprop"
