"""The public surface: a snapshot that fails when the exported API changes by accident."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import paperzoo.ood_dro as ood_dro

EXPECTED = [
    "BASE_LOSSES",
    "COSTS",
    "DigitsShift",
    "LinearRobustLoss",
    "RSSObjective",
    "RSSTrainer",
    "RampLoss",
    "WassersteinRobustLoss",
    "bayes_error",
    "check_pm1_labels",
    "digits_shift",
    "erm_rate",
    "gmm_mean",
    "l2",
    "linear_error",
    "predict_labels",
    "ramp_loss",
    "robust_hinge_linear",
    "robust_logistic_linear",
    "robust_surrogate",
    "robust_zero_one_linear",
    "shift_estimate",
    "shifted_unlabeled",
    "squared_l2",
    "thm41_rhs",
    "thm42_rhs",
    "tune",
    "two_gaussians",
]


def test_public_api_snapshot() -> None:
    assert sorted(ood_dro.__all__) == sorted(EXPECTED)
    for name in ood_dro.__all__:
        obj = getattr(ood_dro, name)
        if not isinstance(obj, dict):
            assert obj.__doc__, f"{name} has no docstring"


def test_package_is_typed_and_registered() -> None:
    assert (Path(ood_dro.__file__).parent / "py.typed").is_file()
    eps = importlib.metadata.entry_points()
    assert any(
        ep.value == "paperzoo.ood_dro.experiment:EXPERIMENT"
        for ep in eps.select(group="paperzoo.experiments")
    )
    assert any(
        ep.value == "paperzoo.ood_dro.bench:BENCHMARK"
        for ep in eps.select(group="paperzoo.benchmarks")
    )
