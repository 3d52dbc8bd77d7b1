"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
import inspect
from pathlib import Path

import paperzoo.ensloss as ens

EXPECTED = [
    "EnsLoss",
    "ExponentialLoss",
    "HingeLoss",
    "LambdaResampler",
    "TargetFormat",
    "__version__",
    "binary_margins",
    "ensloss",
    "ensloss_derivatives",
    "exponential_loss",
    "hinge_loss",
    "inverse_box_cox",
]


def test_public_api_snapshot() -> None:
    assert sorted(ens.__all__) == sorted(EXPECTED)
    for name in ens.__all__:
        obj = getattr(ens, name)
        if name not in ("__version__", "TargetFormat"):
            assert obj.__doc__, f"{name} has no docstring"


def test_signatures_of_the_spec_api() -> None:
    assert list(inspect.signature(ens.EnsLoss).parameters)[:6] == [
        "lam",
        "clip",
        "tail_start",
        "eps",
        "target_format",
        "generator",
    ]
    assert list(inspect.signature(ens.ensloss_derivatives).parameters) == [
        "margins",
        "lam",
        "clip",
        "tail_start",
        "eps",
        "generator",
    ]
    defaults = {k: p.default for k, p in inspect.signature(ens.EnsLoss).parameters.items()}
    assert defaults["lam"] == 0.0 and defaults["clip"] == 1.0 and defaults["tail_start"] == 1.0
    assert defaults["eps"] == 1e-6 and defaults["target_format"] == "01"


def test_package_is_typed_and_registered() -> None:
    assert (Path(ens.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.ensloss.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.ensloss.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
