"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.hyp_oc as hyp_oc

EXPECTED = [
    "HypCELoss",
    "HypOC",
    "HypPCLoss",
    "HyperbolicMLR",
    "PseudoNegativeSampler",
    "SamplerEpochCallback",
    "ToPoincare",
    "apcer_bpcer_acer",
    "clip_norm",
    "eer",
    "expmap",
    "expmap0",
    "hter",
    "hyp_ce_loss",
    "hyp_pc_loss",
    "hyperbolic_mlr_logits",
    "lambda_x",
    "logmap0",
    "mobius_add",
    "poincare_dist",
    "poincare_dist_matrix",
    "project",
    "riemannian_gradient",
    "roc_auc",
]


def test_public_api_snapshot() -> None:
    assert sorted(hyp_oc.__all__) == sorted(EXPECTED)
    for name in hyp_oc.__all__:
        assert getattr(hyp_oc, name).__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(hyp_oc.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.hyp_oc.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.hyp_oc.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
