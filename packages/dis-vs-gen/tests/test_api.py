"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.dis_vs_gen as dvg

EXPECTED = [
    "GaussianNBHead",
    "LogisticHead",
    "ProbeCurve",
    "bayes_error",
    "class_statistics",
    "diagnostics",
    "extract",
    "gaussian_mixture",
    "gaussian_nb_fit",
    "gaussian_nb_logits",
    "llr_gap",
    "llr_variance",
    "logistic_objective",
    "minmax_scale",
    "mixture_parameters",
    "pooled_variances",
    "pretrain_tiny",
    "probe_curve",
    "samples_to_reach",
    "simulation",
    "two_class_error",
]


def test_public_api_snapshot() -> None:
    assert sorted(dvg.__all__) == sorted(EXPECTED)
    for name in dvg.__all__:
        assert getattr(dvg, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(dvg.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.dis_vs_gen.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.dis_vs_gen.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
