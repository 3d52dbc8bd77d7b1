"""The reproduction: smoke run end to end, config checks, the paired verdict, the model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, run_experiment
from paperzoo.ensloss.experiment import EXPERIMENT, EnsLossConfig, paired_verdict, tab_mlp


def test_smoke_run_reports_every_loss_the_verdicts_and_the_check() -> None:
    cfg = dataclasses.replace(EnsLossConfig(), **EXPERIMENT.budgets["smoke"])
    res = run_experiment(
        EXPERIMENT, cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    )
    for name in ("BCE", "hinge", "exponential", "EnsLoss"):
        for ds in ("MNIST 4-9", "breast cancer"):
            row = find_row(res.rows, f"{name} on {ds}", "test_acc")
            assert 0.0 <= row.mean <= 1.0 and len(row.values) == 1
            gap = find_row(res.rows, f"{name} on {ds}", "gap").mean
            train = find_row(res.rows, f"{name} on {ds}", "train_acc").mean
            assert gap == pytest.approx(train - row.mean)
    counts = [find_row(res.rows, "EnsLoss vs BCE", k).mean for k in ("wins", "ties", "losses")]
    assert sum(counts) == 2  # one verdict per data set
    assert len(res.checks) == 1 and "EnsLoss - BCE" in res.checks[0].name
    assert "test_acc_mnist2" in res.curves


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pairs", "3-3"),
        ("pairs", "3-10"),
        ("pairs", "35"),
        ("losses", "BCE,hinge"),
        ("losses", "EnsLoss,BCE,focal"),
        ("epochs", 0),
        ("lr", -1.0),
        ("lambda_period", -1),
        ("test_fraction", 1.0),
        ("alpha", 0.0),
        ("lam", float("nan")),
    ],
)
def test_bad_config_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        EnsLossConfig(**{key: value})  # type: ignore[arg-type]


def test_no_data_set_is_a_user_error() -> None:
    with pytest.raises(UserError):
        EnsLossConfig(pairs="", breast_cancer=False)


def test_paired_verdict_counts_like_the_paper() -> None:
    assert paired_verdict([0.9, 0.91, 0.92], [0.8, 0.8, 0.81], 0.05)[0] == "win"
    assert paired_verdict([0.8, 0.8, 0.81], [0.9, 0.91, 0.92], 0.05)[0] == "loss"
    assert paired_verdict([0.9, 0.8, 0.85], [0.85, 0.85, 0.85], 0.05)[0] == "tie"
    assert paired_verdict([0.9, 0.9], [0.9, 0.9], 0.05)[0] == "tie"
    assert paired_verdict([0.9, 0.9], [0.8, 0.8], 0.05)[0] == "win"  # constant gain


def test_tab_mlp_has_the_reference_blocks() -> None:
    net = tab_mlp(10, hidden=8, depth=3)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d"] * 3 + ["Linear"]
    assert net.eval()(torch.randn(4, 10)).shape == (4, 1)
