"""The registered reproduction runs end to end at its smoke budget."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.experiments import RunContext, find_row, get_experiment


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_checks() -> None:
    exp = get_experiment("hpm")
    cfg = exp.make_config("smoke", ["n_train=64", "n_test=32", "epochs=1", "batch_size=32"])
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for method in ("MAE", "HPM"):
        assert 0.0 <= find_row(res.rows, method, "knn_acc").mean <= 1.0
    assert 0.0 <= find_row(res.rows, "HPM", "rank_pairwise_acc").mean <= 1.0
    assert len(res.checks) == 3
