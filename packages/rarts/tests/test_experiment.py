"""The reproduction runs end to end at a tiny size, and its checks follow the rows honestly."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch

from paperzoo.core.cli import main
from paperzoo.core.experiments import Row, RunContext
from paperzoo.rarts.experiment import EXPERIMENT, RartsConfig, _checks


def test_checks_report_failures_as_failures() -> None:
    rows = [
        Row.from_values("RARTS", "search_s", [6.0]),
        Row.from_values("DARTS-2nd", "search_s", [10.0]),
        Row.from_values("DARTS-1st", "search_s", [4.0]),
        Row.from_values("RARTS", "test_top1", [0.5]),
        Row.from_values("DARTS-1st", "test_top1", [0.6]),
        Row.from_values("DARTS-2nd", "test_top1", [0.505]),
        Row.from_values("random arch", "test_top1", [0.7]),
    ]
    got = {c.name: c.passed for c in _checks(rows, RartsConfig())}
    assert got == {
        "RARTS search wall-clock <= 0.55x DARTS-2nd": False,
        "RARTS search wall-clock <= 1.3x DARTS-1st": False,
        "RARTS mean test top-1 >= DARTS-1st": False,
        "RARTS mean test top-1 within 1 point of DARTS-2nd (soft)": True,
        "searched architectures beat a random one (soft; mean of searched methods)": False,
    }


def test_experiment_runs_end_to_end_on_a_tiny_budget() -> None:
    config = dataclasses.replace(
        EXPERIMENT.make_config("smoke"), n_train=64, batch_size=32, methods=("rarts", "random")
    )
    ctx = RunContext(
        seeds=[0], device=torch.device("cpu"), budget="smoke", log=logging.getLogger("t")
    )
    result = EXPERIMENT.run(config, ctx)
    metrics = {(r.method, r.metric) for r in result.rows}
    assert {("RARTS", "test_top1"), ("random arch", "test_top1"), ("RARTS", "search_s")} <= metrics
    assert all(0.0 <= r.mean <= 1.0 for r in result.rows if r.metric == "test_top1")
    assert result.extra["genotypes"]["rarts"][0]["normal"]


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("methods=darts1,foo", "methods"),
        ("lam=0", "lam"),
        ("momentum=1.5", "momentum"),
        ("search_epochs=0", "search_epochs"),
        ("alpha_grad=late", "alpha_grad"),
    ],
)
def test_a_bad_set_value_is_one_error_line(
    setting: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", "rarts", "--smoke", "--set", setting, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("paperzoo: error:") and f"{name}: expected" in err
    assert "Traceback" not in err and not any(tmp_path.iterdir())
