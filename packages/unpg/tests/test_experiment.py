"""The reproduction: config validation, the synthetic set, the checks, and a smoke run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import Row, RunContext, run_experiment
from paperzoo.unpg.experiment import EXPERIMENT, UNPGConfig, _checks
from paperzoo.unpg.synthetic import synthetic_identities, verification_pairs


def test_synthetic_identities_are_disjoint_and_standardised() -> None:
    data = synthetic_identities(20, 5, 15, seed=3)
    assert data.train.x.shape == (75, 128) and data.test.x.shape == (25, 128)
    assert data.train.y.max() == 14 and data.test.y.max() == 4
    torch.testing.assert_close(data.train.x.mean(0), torch.zeros(128), atol=1e-5, rtol=0)
    again = synthetic_identities(20, 5, 15, seed=3)
    assert torch.equal(again.train.x, data.train.x)
    assert not torch.equal(synthetic_identities(20, 5, 15, seed=4).train.x, data.train.x)


def test_verification_pairs_cover_every_genuine_pair() -> None:
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    a, b, same = verification_pairs(y, 5, seed=0)
    assert int(same.sum()) == 3 + 1 and int((~same).sum()) == 5
    assert bool((y[a[same]] == y[b[same]]).all()) and bool((y[a[~same]] != y[b[~same]]).all())


@pytest.mark.parametrize(
    "change",
    [
        {"methods": "arcface,softmax"},
        {"whisker": -1.0},
        {"scales": ()},
        {"label_noise": 1.0},
        {"num_train_identities": 600},
        {"epochs": 0},
        {"threads": 0},
    ],
)
def test_bad_config_is_a_user_error(change: dict[str, object]) -> None:
    with pytest.raises(UserError):
        dataclasses.replace(UNPGConfig(), **change)


def test_checks_use_the_paired_standard_error() -> None:
    cfg = UNPGConfig(methods="arcface,arcface+unpg,arcface+mlpg", label_noise=0.0)
    rows = [
        Row.from_values("ArcFace s=32", "tar@1e-3", [50.0, 52.0, 54.0]),
        Row.from_values("ArcFace+UNPG (k=1.5) s=32", "tar@1e-3", [49.0, 50.0, 51.0]),
        Row.from_values("ArcFace+MLPG (k=inf) s=32", "tar@1e-3", [60.0, 61.0, 62.0]),
    ]
    checks = _checks(rows, cfg)
    # differences -1, -2, -3: mean -2, SE 1/sqrt(3) = 0.577 -> -2 < -1.15: fails
    assert [c.passed for c in checks] == [False, True]
    rows[1] = Row.from_values("ArcFace+UNPG (k=1.5) s=32", "tar@1e-3", [50.0, 51.0, 54.5])
    assert _checks(rows, cfg)[0].passed


@pytest.mark.slow
def test_smoke_run_reports_rows_checks_and_curves() -> None:
    cfg = EXPERIMENT.make_config("smoke")
    ctx = RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    res = run_experiment(EXPERIMENT, cfg, ctx)
    methods = {r.method for r in res.rows}
    assert "ArcFace s=32" in methods and "ArcFace+UNPG (k=1.5) s=32 noise=5%" in methods
    assert {r.metric for r in res.rows} == {"tar@1e-3", "tar@1e-2", "eer", "wdfs"}
    assert all(0 <= r.mean <= 100 for r in res.rows)
    assert len(res.checks) == 1 and len(res.curves["test_tar"].x) == cfg.epochs
