"""The reproduction's selection and prediction rules (part A), without training."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from paperzoo.zloss import experiment as ex


def test_log_spherical_and_log_taylor_predict_by_their_own_probability() -> None:
    # o_0 = -4 has the largest |o|: the spherical softmax gives it (16+e)/(q+De), the Taylor softmax
    # 1 - 4 + 8 = 5 > 1 + 1 + 0.5; argmax o would pick class 1 for both.
    logits = torch.tensor([[-4.0, 1.0, 0.0]])
    model = nn.Identity()
    for name, expected in (
        ("log-spherical-softmax", 0),
        ("log-taylor-softmax", 0),
        ("z-loss", 1),
        ("spherical-mse", 1),
        ("cross-entropy", 1),
    ):
        assert int(ex._Predictor(model, name)(logits).argmax(1)) == expected, name


def test_argmax_breaks_ties_towards_the_earlier_grid_entry() -> None:
    assert ex._argmax({"x": 0.5, "y": 0.7, "z": 0.7}) == "y"
    assert ex._argmax({"x": 0.7, "y": 0.7 + 1e-12}) == "x"
    assert ex._argmax({"x": 0.1, "y": 0.2}) == "y"


def test_z_grid_holds_the_official_example_and_every_loss_shares_the_lr_grid() -> None:
    config = ex.ZLossConfig()
    assert {"a": 1.0, "b": 0.0} in ex._loss_grid(config, "z-loss")
    assert len(ex._loss_grid(config, "log-spherical-softmax")) == len(config.spherical_eps_grid)
    assert ex._loss_grid(config, "spherical-mse") == [{}]
    assert config.lr in config.lr_grid


@dataclass
class _FakeRuns:
    """Stands in for _QualityRuns: validation scores from a table; test must never be read."""

    config: ex.ZLossConfig
    table: dict[tuple[str, float], float]
    ctx: object = field(default_factory=lambda: type("C", (), {"log": logging.getLogger("t")}))
    kept: list[tuple[str, str]] = field(default_factory=list)

    def val(self, name: str, params: dict[str, float], lr: float, seeds: list[int]) -> list[float]:
        return [self.table.get((ex._label(params), lr), 0.0)] * len(seeds)

    def test(self, *args: object) -> list[float]:
        raise AssertionError("selection read the test split")

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None:
        self.kept.append((name, ex._label(params, lr)))


def test_selection_uses_validation_only_loss_grid_first_then_lr() -> None:
    config = ex.ZLossConfig(a_grid=(0.5, 1.0), b_grid=(0.0, 2.0), lr_grid=(3e-4, 1e-3, 3e-3))
    table = {
        ("a=0.5,b=0", 1e-3): 0.90,
        ("a=1,b=2", 1e-3): 0.95,  # best (a, b) at the base lr
        ("a=1,b=2", 3e-3): 0.97,  # then the best lr for it
        ("a=0.5,b=0", 3e-3): 0.99,  # not reachable: (a, b) is chosen at the base lr
    }
    runs = _FakeRuns(config, table)
    sel = ex._select(runs, "z-loss", [0, 1])  # type: ignore[arg-type]
    assert sel.params == {"a": 1.0, "b": 2.0}
    assert sel.lr == 3e-3
    assert sel.record["selected"] == {"a": 1.0, "b": 2.0, "lr": 3e-3}
    assert runs.kept == [("z-loss", "a=1,b=2,lr=0.003")]
    # a loss without its own hyper-parameters only gets the lr grid; ties keep the base lr
    runs = _FakeRuns(config, {("-", 1e-3): 0.9, ("-", 3e-3): 0.9, ("-", 3e-4): 0.8})
    sel = ex._select(runs, "spherical-mse", [0])  # type: ignore[arg-type]
    assert (sel.params, sel.lr) == ({}, 1e-3)
    assert "loss_grid_mean_val_top1_at_base_lr" not in sel.record
