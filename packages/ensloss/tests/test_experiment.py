"""The reproduction: smoke run end to end, config checks, the paired verdict, the model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
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
    assert "test_acc_pairs" in res.curves


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


def test_data_root_runs_cifar10_pairs_from_the_binary_version(tmp_path: Path) -> None:
    """A tiny folder in CIFAR-10's binary format (label byte + 3072 pixel bytes per record)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()

    def records(n: int) -> bytes:
        rec = rng.integers(0, 256, (n, 1 + 3072), dtype=np.uint8)
        rec[:, 0] = rng.choice([3, 5, 7], n)
        return rec.tobytes()

    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(records(12))
    (folder / "test_batch.bin").write_bytes(records(12))
    cfg = EnsLossConfig(
        pairs="3-5",
        breast_cancer=False,
        losses="BCE,EnsLoss",
        data_root=str(tmp_path),
        epochs=1,
        hidden=8,
        batch_size=8,
    )
    res = run_experiment(
        EXPERIMENT, cfg, RunContext(seeds=[0, 1], device=torch.device("cpu"), budget="full")
    )
    row = find_row(res.rows, "EnsLoss on CIFAR10 3-5", "test_acc")
    assert len(row.values) == 2 and 0.0 <= row.mean <= 1.0
    assert find_row(res.rows, "BCE on CIFAR2 pooled", "test_acc").values
    assert "CIFAR2" in res.checks[0].name


def test_lambda_period_resamples_ensloss_lambda_at_the_reference_epochs() -> None:
    from paperzoo.core.training import TrainState
    from paperzoo.ensloss import EnsLoss
    from paperzoo.ensloss.experiment import _loss_fn, _TestAccuracy

    cfg = EnsLossConfig(lambda_period=2)
    loss, resampler = _loss_fn("EnsLoss", cfg, 0, torch.device("cpu"))
    assert isinstance(loss, EnsLoss) and resampler is not None
    cb = _TestAccuracy(
        torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.device("cpu"), resampler
    )
    model = torch.nn.Linear(3, 1)
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    lams = []
    for epoch in range(4):
        state.epoch = epoch  # fit's 0-based epoch; the reference's e = epoch + 1
        cb.on_epoch_begin(state)
        lams.append(loss.lam)
    assert lams[0] == 0.0 and lams[1] != 0.0 and lams[2] == lams[1] and lams[3] != lams[2]
    assert _loss_fn("EnsLoss", EnsLossConfig(), 0, torch.device("cpu"))[1] is None
