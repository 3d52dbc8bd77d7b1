"""The registered reproduction runs end to end at its smoke budget."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core.checks import UserError
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


@pytest.mark.slow
def test_hpm_only_run_gives_the_same_hpm_rows_and_adds_diagnostics() -> None:
    exp = get_experiment("hpm")
    sets = ["n_train=64", "n_test=32", "epochs=1", "batch_size=32"]
    ctx = RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    both = exp.run(exp.make_config("smoke", sets), ctx)
    only = exp.run(exp.make_config("smoke", [*sets, "methods=HPM", "diagnostics=true"]), ctx)
    assert {r.method for r in only.rows} == {"HPM"}
    for key in ("rank_pairwise_acc", "rec_loss_ratio", "ink_hpm_mask"):
        assert find_row(only.rows, "HPM", key).values == find_row(both.rows, "HPM", key).values
    for name in ("teacher", "student_pred", "ink", "oracle_expected_loss"):
        for alpha in (0.5, 1.0):
            v = find_row(only.rows, "HPM", f"ratio_{name}_a{alpha}").mean
            assert torch.isfinite(torch.tensor(v)) and v > 0


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["methods=BYOL"], "methods"),
        (["eval_split=train"], "eval_split"),
        (["mask_ratio=1.0"], "mask_ratio"),
        (["probe=lars"], "probe"),
        (["epochs=0"], "epochs"),
        (["threads=0"], "threads"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    """Checked by the config's __post_init__ before anything runs: one paperzoo: error line."""
    with pytest.raises(UserError, match=match):
        get_experiment("hpm").make_config("smoke", sets)


def test_n_val_must_leave_training_images() -> None:
    exp = get_experiment("hpm")
    cfg = exp.make_config("smoke", ["eval_split=val", "n_val=256"])
    with pytest.raises(ValueError, match="n_val"):
        exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
