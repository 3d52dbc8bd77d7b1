"""Experiment parts: the MLP builder, parameter counts, selection on validation, thread scoping,
config checks at ``--set`` time, and curves with their seed spread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from paperzoo.core.checks import UserError, check_positive
from paperzoo.core.devices import torch_threads
from paperzoo.core.evaluation import accuracy
from paperzoo.core.experiments import (
    Curve,
    Experiment,
    Result,
    Row,
    RunContext,
    apply_overrides,
    run_experiment,
)
from paperzoo.core.models import count_parameters, mlp
from paperzoo.core.report import plot_curve
from paperzoo.core.selection import argmax_first, grid, label, select_on_validation


def test_mlp_shapes_and_layers() -> None:
    net = mlp([5, 7, 7, 3], activation="tanh", dropout=0.1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert net(torch.zeros(4, 5)).shape == (4, 3)
    assert count_parameters(net) == 5 * 7 + 7 + 7 * 7 + 7 + 7 * 3 + 3


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"widths": [5]}, ValueError, "^widths: expected at least 2"),
        ({"widths": [5, 0]}, ValueError, r"^widths\[1\]: expected an integer >= 1"),
        ({"widths": "57"}, TypeError, "^widths: expected a sequence"),
        ({"widths": [5, 2], "activation": "swish"}, ValueError, "^activation: expected one of"),
        ({"widths": [5, 2], "dropout": 1.0}, ValueError, r"^dropout: expected a value in \[0, 1\)"),
    ],
)
def test_mlp_bad_arguments(kwargs: dict[str, object], err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        mlp(**kwargs)  # type: ignore[arg-type]


def test_count_parameters_trainable_only_and_shared_once() -> None:
    lin = nn.Linear(3, 2)
    net = nn.Sequential(lin, lin)
    assert count_parameters(net) == 8
    lin.bias.requires_grad_(False)
    assert count_parameters(net) == 6 and count_parameters(net, trainable_only=False) == 8


def test_grid_order_and_labels() -> None:
    g = grid(a=(1, 2), b=(0.5,))
    assert g == [{"a": 1, "b": 0.5}, {"a": 2, "b": 0.5}]
    assert grid() == [{}] and label({}) == "default" and label(g[0]) == "a=1,b=0.5"
    with pytest.raises(ValueError, match="^b: expected at least one grid value"):
        grid(a=(1,), b=())


def test_selection_ties_go_to_the_earlier_candidate_and_nan_never_wins() -> None:
    assert argmax_first({"x": 0.5, "y": 0.5 + 1e-12, "z": 0.4}) == "x"
    assert argmax_first({"x": float("nan"), "y": 0.1}) == "y"
    sel = select_on_validation(grid(lr=(0.1, 0.01, 1.0)), lambda p: -abs(p["lr"] - 0.01))
    assert (
        sel.best == {"lr": 0.01}
        and sel.best_score == 0.0
        and list(sel.scores)
        == [
            "lr=0.1",
            "lr=0.01",
            "lr=1",
        ]
    )
    low = select_on_validation([3, 1, 2], float, maximize=False)
    assert low.best == 1
    with pytest.raises(ValueError, match="unique labels"):
        select_on_validation([1, 1], float)
    with pytest.raises(ValueError, match="at least one candidate"):
        select_on_validation([], float)


def test_accuracy_takes_any_callable_and_restores_train_mode() -> None:
    x, y = torch.eye(3), torch.tensor([0, 1, 1])
    assert accuracy(lambda t: t, x, y, batch_size=2) == pytest.approx(2 / 3)
    net = nn.Sequential(nn.Identity()).train()
    assert accuracy(net, x, y) == pytest.approx(2 / 3) and net.training


def test_torch_threads_restores_the_count_even_on_error() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="^threads: expected an integer >= 1"), torch_threads(0):
        pass


@dataclass(frozen=True)
class _Cfg:
    lr: float = 0.1
    threads: int | None = 1

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)


def _run(cfg: _Cfg, ctx: RunContext) -> Result:
    return Result(rows=[Row.from_values("m", "threads", [torch.get_num_threads()])])


def test_run_experiment_scopes_threads_to_the_run() -> None:
    exp = Experiment("t", "test", _Cfg, _run)
    before = torch.get_num_threads()
    ctx = RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke")
    res = run_experiment(exp, _Cfg(threads=1), ctx)
    assert res.rows[0].values == [1.0] and torch.get_num_threads() == before


def test_a_bad_set_value_is_one_user_error_naming_the_key() -> None:
    with pytest.raises(UserError, match=r"^--set lr=-1: lr: expected a finite value > 0"):
        apply_overrides(_Cfg(), [("lr", "-1")])
    exp = Experiment("t", "test", _Cfg, _run, budgets={"smoke": {"lr": -1.0}})
    with pytest.raises(RuntimeError, match="'smoke' budget is invalid"):
        exp.make_config("smoke")


def test_curve_from_seeds_means_and_plot(tmp_path: Path) -> None:
    c = Curve.from_seeds("t", "x", "y", [0, 1], {"a": [[0.0, 1.0], [2.0, 3.0]]})
    assert c.series == {"a": [1.0, 2.0]} and c.per_seed["a"] == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(ValueError, match="equal length"):
        Curve.from_seeds("t", "x", "y", [0, 1], {"a": [[0.0], [1.0, 2.0]]})
    pytest.importorskip("matplotlib")
    assert plot_curve(c, tmp_path / "c.png") and (tmp_path / "c.png").stat().st_size > 0
