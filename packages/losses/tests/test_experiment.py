"""The experiment end to end at its smoke budget, and its config errors."""

from __future__ import annotations

import logging

import pytest
import torch

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, get_experiment, run_experiment
from paperzoo.losses.experiment import EXPERIMENT, LossesConfig


def test_registered_under_the_entry_point() -> None:
    assert get_experiment("losses") is EXPERIMENT or get_experiment("losses").name == "losses"


def test_smoke_run_reports_every_loss_in_every_setting() -> None:
    cfg = EXPERIMENT.make_config("smoke")
    ctx = RunContext(
        seeds=[0], device=torch.device("cpu"), budget="smoke", log=logging.getLogger("test")
    )
    res = run_experiment(EXPERIMENT, cfg, ctx)
    metrics = {(r.method, r.metric) for r in res.rows}
    for entry in cfg.settings:
        for loss in cfg.losses:
            assert (loss, f"{entry}/top1") in metrics
            assert (loss, f"{entry}/rank") in metrics
    assert ("cross_entropy", "breast_cancer/imbalance10/gmean") in metrics
    assert ("cross_entropy", "digits/clean/gmean") not in metrics
    assert set(res.extra["ranks"]) == set(cfg.settings)
    assert res.checks and all(isinstance(c.passed, bool) for c in res.checks)
    for key, ranks in res.extra["ranks"].items():
        n = len(ranks)
        assert sum(ranks.values()) == pytest.approx(n * (n + 1) / 2), key


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        ({"settings": ("digits-clean",)}, "settings"),
        ({"settings": ("digits/noisy",)}, "setting"),
        ({"losses": ("nope",)}, "unknown loss"),
        ({"losses": ("gce",)}, "cross_entropy"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_config_is_a_user_error(sets: dict[str, object], match: str) -> None:
    with pytest.raises((UserError, ValueError), match=match):
        LossesConfig(**sets)  # type: ignore[arg-type]
