"""The reproduction: registered, config checked, smoke budget end to end."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from paperzoo.compsum.experiment import EXPERIMENT, CompSumConfig, run
from paperzoo.core.experiments import RunContext, get_experiment


def test_registered_under_the_entry_point_group() -> None:
    assert get_experiment("compsum") is EXPERIMENT
    assert EXPERIMENT.seeds["quick"] >= 3


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("parts", "D", "parts"),
        ("c_classes", (1, 100), "c_classes"),
        ("c_epochs", 0, "c_epochs"),
        ("a_taus", (-1.0, 1.0), "a_taus"),
        ("a_taus", (0.0, 2.0), "a_taus"),
        ("b_methods", ("ce", "mart"), "b_methods"),
        ("b_nus", (-0.5,), "b_nus"),
        ("a_epochs", 0, "a_epochs"),
        ("a_early_epoch", 20, "a_early_epoch"),
        ("eps", 0.0, "eps"),
        ("test_steps", -1, "test_steps"),
        ("b_tau", -1.0, "b_tau"),
        ("batch_size", True, "batch_size"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(CompSumConfig(), **{field: value})


def test_smoke_run_gives_rows_and_checks() -> None:
    cfg = EXPERIMENT.make_config("smoke")
    res = run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    metrics = {(r.method, r.metric) for r in res.rows}
    assert ("comp-sum tau=1 (CE)", "test_acc@epoch1") in metrics
    assert ("TRADES (beta=6)", "robust_acc_pgd20") in metrics
    assert ("ADV-COMP-SUM (tau=1, nu=0.5)", "clean_acc") in metrics
    assert ("comp-sum tau=2 (MAE)", "test_acc@100classes") in metrics
    names = [c.name for c in res.checks]
    assert any("MAE" in n for n in names) and any("TRADES - 3 points" in n for n in names)
    assert any(n.startswith("C: MAE's accuracy gap") for n in names)
    for r in res.rows:
        assert 0.0 <= r.mean <= 1.0
