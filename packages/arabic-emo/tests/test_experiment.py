"""The registered reproduction, its config checks, the training helpers and the bench reference."""

from __future__ import annotations

import pytest
import torch

from paperzoo.arabic_emo import hybrid_loss, label_correlation
from paperzoo.arabic_emo.bench import reference_hybrid_loss
from paperzoo.arabic_emo.training import tune_thresholds
from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment


@pytest.mark.slow
def test_smoke_reproduction_produces_rows_and_the_check() -> None:
    exp = get_experiment("arabic-emo")
    cfg = exp.make_config(
        "smoke", ["n_train=96", "n_dev=48", "n_test=48", "methods=bce,pos_weight,hybrid"]
    )
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for method in ("bce", "pos_weight", "hybrid", "single-0-d16"):
        assert 0.0 <= find_row(res.rows, method, "macro_f1").mean <= 1.0
        assert 0.0 <= find_row(res.rows, method, "jaccard").mean <= 1.0
    assert len(res.checks) == 1 and "rarest" in res.checks[0].name
    assert "reported_stacked_vs_best_single_macro_f1" in res.extra


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["methods=bce,focal"], "methods"),
        (["fusion=sum"], "fusion"),
        (["encoder_sizes=31"], "encoder_sizes"),
        (["lambda_con=-1"], "lambda_con"),
        (["stage_b_epochs=0"], "stage_b_epochs"),
        (["threads=0"], "threads"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    with pytest.raises(UserError, match=match):
        get_experiment("arabic-emo").make_config("quick", sets)


def test_bench_reference_equals_the_hybrid_loss() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(9, 5, generator=g, dtype=torch.float64)
    h = torch.randn(9, 4, generator=g, dtype=torch.float64)
    y = (torch.rand(9, 5, generator=g) < 0.4).double()
    pw = torch.rand(5, generator=g, dtype=torch.float64) + 1
    c = label_correlation((torch.rand(40, 5, generator=g) < 0.4).double())
    ours = hybrid_loss(z, y, h, pos_weight=pw, correlation=c).total
    torch.testing.assert_close(ours, reference_hybrid_loss(z, y, h, pw, c))


def test_tuned_thresholds_maximise_each_labels_dev_f1() -> None:
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(200, 3, generator=g) < 0.2).double()
    probs = (0.5 * y + 0.5 * torch.rand(200, 3, generator=g, dtype=torch.float64)) * torch.tensor(
        [1.0, 0.5, 0.25], dtype=torch.float64
    )
    thr = tune_thresholds(probs, y)
    grid = torch.arange(1, 20, dtype=torch.float64) / 20
    for k in range(3):
        f1s = []
        for t in grid:
            pred = probs[:, k] >= t
            tp = float((pred & (y[:, k] > 0)).sum())
            f1s.append(2 * tp / (float(pred.sum()) + float(y[:, k].sum())))
        assert f1s[int((grid == thr[k]).nonzero())] == pytest.approx(max(f1s))
    assert thr[2] < thr[0]  # a label with low scores gets a low threshold
