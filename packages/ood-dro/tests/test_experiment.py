"""The registered reproduction runs end to end at a tiny budget; its config rejects bad values."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from paperzoo.core.bench import BenchContext
from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, find_row, get_experiment
from paperzoo.ood_dro.bench import run_bench

TINY = [
    "d=10",
    "n_test=200",
    "n_val=100",
    "ceiling_m=50",
    "epochs=3",
    "n_values=2m,50",
    "digits_epochs=2",
    "digits_warmup=1",
]


def test_tiny_reproduction_produces_rows_checks_and_curves() -> None:
    exp = get_experiment("ood-dro")
    cfg = exp.make_config("smoke", TINY)
    res = exp.run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    for method in (
        "ERM m=10",
        "RSS m=10 alpha=0 n=20",
        "RSS m=10 alpha=0.5 n=50",
        "ERM m=50 (ceiling)",
    ):
        assert 0.0 <= find_row(res.rows, method, "test_acc").mean <= 1.0
    assert find_row(res.rows, "Bayes", "test_acc").mean == pytest.approx(0.8413, abs=1e-4)
    assert find_row(res.rows, "digits 3-vs-8 RSS noise=0", "test_acc").mean > 0.0
    eff = find_row(res.rows, "shift effect m=10 n=50", "acc(alpha=0.5) - acc(alpha=0)")
    a0 = find_row(res.rows, "RSS m=10 alpha=0 n=50", "test_acc").mean
    a5 = find_row(res.rows, "RSS m=10 alpha=0.5 n=50", "test_acc").mean
    assert eff.mean == pytest.approx(a5 - a0)
    assert len(res.checks) == 4 and "acc_vs_n_m10" in res.curves


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["ms=0"], "ms"),
        (["ms=a"], "ms"),
        (["n_values=10x"], "n_values"),
        (["rss_lam=-1"], "rss_lam"),
        (["epochs=0"], "epochs"),
        (["sigma=0"], "sigma"),
        (["threads=0"], "threads"),
    ],
)
def test_bad_config_values_are_one_user_error(sets: list[str], match: str) -> None:
    with pytest.raises((UserError, ValueError), match=match):
        get_experiment("ood-dro").make_config("smoke", sets)


@pytest.mark.slow
def test_benchmark_runs_every_case() -> None:
    rows = run_bench(BenchContext(device=torch.device("cpu"), quick=True))
    cases = {r.case for r in rows}
    peer = importlib.util.find_spec("skwdro") is not None
    assert len(cases) == 3 + peer and all(r.median_s > 0 for r in rows)
