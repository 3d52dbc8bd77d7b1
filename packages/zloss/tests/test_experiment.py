"""The reproductions' config, selection and prediction rules (A, A2), mostly without training."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, apply_overrides, find_row
from paperzoo.core.selection import label
from paperzoo.zloss import FactoredSphericalLinear
from paperzoo.zloss import experiment as ex
from paperzoo.zloss.losses import SPHERICAL_LOSSES
from paperzoo.zloss.repro_a import QUALITY_LOSSES, QualityConfig, loss_grid
from paperzoo.zloss.repro_b import SpeedConfig
from paperzoo.zloss.repro_many import (
    MANY_LOSSES,
    ManyClassConfig,
    ManyClassRuns,
    many_class_hits,
    many_loss_grid,
    run_many,
)
from paperzoo.zloss.repro_protocol import (
    Predictor,
    Selected,
    class_scores,
    run_label,
    select_loss,
)


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
        assert int(Predictor(model, name)(logits).argmax(1)) == expected, name


def test_selection_breaks_ties_towards_the_earlier_grid_entry() -> None:
    table = {("a=1,b=0", 1e-3): 0.7, ("a=1,b=1", 1e-3): 0.7 + 1e-12, ("a=1,b=2", 1e-3): 0.6}
    runs = _FakeRuns(table)
    sel = _select(runs, "z-loss", [0], QualityConfig(a_grid=(1.0,), lr_grid=(1e-3,)))
    assert sel.params == {"a": 1.0, "b": 0.0}


def test_z_grid_holds_the_official_example_and_every_loss_shares_the_lr_grid() -> None:
    config = QualityConfig()
    assert {"a": 1.0, "b": 0.0} in loss_grid(config, "z-loss")
    assert len(loss_grid(config, "log-spherical-softmax")) == len(config.eps_grid)
    assert loss_grid(config, "spherical-mse") == [{}]
    assert config.lr in config.lr_grid


def test_every_command_line_key_reaches_one_reproduction_config() -> None:
    config = ex.ZLossConfig()
    parts = {"run_quality", "run_many", "run_speed", "threads"}
    assert config.quality() == QualityConfig()  # the defaults are the parts' own
    assert config.many() == ManyClassConfig()
    assert config.speed() == SpeedConfig()
    keys = set(ex._QUALITY_KEYS) | set(ex._MANY_KEYS) | set(ex._SPEED_KEYS) | parts
    assert keys == {f.name for f in dataclasses.fields(ex.ZLossConfig)}
    changed = apply_overrides(config, [("many_steps", "7"), ("spherical_eps_grid", "0.5,2")])
    assert changed.many().steps == 7 and changed.quality().eps_grid == (0.5, 2.0)
    assert changed.speed() == config.speed()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("many_steps", "0", "many_steps: expected an integer >= 1, got 0"),
        ("spherical_eps_grid", "0.1,-1", "spherical_eps_grid: expected a finite value > 0"),
        ("lr_grid", "0.001,0.001", "lr_grid: expected distinct grid values"),
        ("seconds", "0", "seconds: expected a finite value > 0"),
        ("dataset", "cifar", "dataset: expected one of"),
        ("z_a", "-1", "z_a: expected a finite value > 0"),
    ],
)
def test_a_bad_set_value_is_one_user_error_naming_its_key(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        apply_overrides(ex.ZLossConfig(), [(key, value)])


@dataclass
class _FakeRuns:
    """Stands in for QualityRuns: validation scores from a table; test must never be read."""

    table: dict[tuple[str, float], float]
    kept: list[tuple[str, str]] = field(default_factory=list)

    def val(self, name: str, params: dict[str, float], lr: float, seeds: list[int]) -> list[float]:
        return [self.table.get((label(params), lr), 0.0)] * len(seeds)

    def test(self, *args: object) -> list[float]:
        raise AssertionError("selection read the test split")

    def keep_only(self, name: str, params: dict[str, float], lr: float) -> None:
        self.kept.append((name, run_label(params, lr)))


def _select(runs: _FakeRuns, name: str, seeds: list[int], config: QualityConfig) -> Selected:
    return select_loss(
        runs,
        name,
        seeds,
        grid=loss_grid(config, name),
        base_lr=config.lr,
        lr_grid=config.lr_grid,
        log=logging.getLogger("t"),
        tag="A",
    )


def test_selection_uses_validation_only_loss_grid_first_then_lr() -> None:
    config = QualityConfig(a_grid=(0.5, 1.0), b_grid=(0.0, 2.0), lr_grid=(3e-4, 1e-3, 3e-3))
    table = {
        ("a=0.5,b=0", 1e-3): 0.90,
        ("a=1,b=2", 1e-3): 0.95,  # best (a, b) at the base lr
        ("a=1,b=2", 3e-3): 0.97,  # then the best lr for it
        ("a=0.5,b=0", 3e-3): 0.99,  # not reachable: (a, b) is chosen at the base lr
    }
    runs = _FakeRuns(table)
    sel = _select(runs, "z-loss", [0, 1], config)
    assert sel.params == {"a": 1.0, "b": 2.0}
    assert sel.lr == 3e-3
    assert sel.record["selected"] == {"a": 1.0, "b": 2.0, "lr": 3e-3}
    assert runs.kept == [("z-loss", "a=1,b=2,lr=0.003")]
    # a loss without its own hyper-parameters only gets the lr grid; ties keep the base lr
    runs = _FakeRuns({("default", 1e-3): 0.9, ("default", 3e-3): 0.9, ("default", 3e-4): 0.8})
    sel = _select(runs, "spherical-mse", [0], config)
    assert (sel.params, sel.lr) == ({}, 1e-3)
    assert "loss_grid_mean_val_top1_at_base_lr" not in sel.record


# ----------------------------------------------------------------------------- A2: many classes


def test_class_scores_keep_the_shape_and_match_the_predictor() -> None:
    o = torch.randn(4, 7)
    for name in QUALITY_LOSSES:
        scores = class_scores(name, o)
        assert scores.shape == (4, 7), name
        assert torch.equal(scores, Predictor(nn.Identity(), name)(o)), name


def test_many_class_grid_covers_every_stats_loss() -> None:
    config = ManyClassConfig()
    assert set(MANY_LOSSES) == set(SPHERICAL_LOSSES)
    z = many_loss_grid(config, "z-loss")
    assert len(z) == len(config.a_grid) * len(config.b_grid)
    assert {"a": 1.0, "b": 0.0} in z
    assert len(many_loss_grid(config, "log-spherical-softmax")) == len(config.eps_grid)
    assert many_loss_grid(config, "spherical-mse") == [{}]
    assert many_loss_grid(config, "log-taylor-softmax") == [{}]
    assert config.lr in config.lr_grid
    with pytest.raises(ValueError, match="name: expected one of"):
        many_loss_grid(config, "cross-entropy")  # no stats form: not in A2


def test_selection_with_a2_grids_reads_validation_only() -> None:
    config = ManyClassConfig()
    table = {
        ("a=2,b=5", 1.0): 0.6,  # best (a, b) at the A2 base lr
        ("a=2,b=5", 0.1): 0.7,  # then its best lr
        ("a=1,b=0", 0.01): 0.9,  # not reachable: (a, b) is chosen at the base lr
        ("a=1,b=0", 1.0): 0.5,
    }
    runs = _FakeRuns(table)
    sel = select_loss(
        runs,
        "z-loss",
        [0, 1, 2],
        grid=many_loss_grid(config, "z-loss"),
        base_lr=config.lr,
        lr_grid=config.lr_grid,
        log=logging.getLogger("t"),
        tag="A2",
    )
    assert (sel.params, sel.lr) == ({"a": 2.0, "b": 5.0}, 0.1)
    lrs = list(sel.record["lr_grid_mean_val_top1"])  # type: ignore[call-overload]
    assert lrs == ["1", "0.001", "0.01", "0.1", "10", "100"]  # the base rate first
    assert runs.kept == [("z-loss", "a=2,b=5,lr=0.1")]


def test_many_class_hits_rank_by_the_loss_own_scores() -> None:
    torch.manual_seed(0)
    layer = FactoredSphericalLinear(5, 30, dtype=torch.float32, validate=False)
    body = nn.Identity()
    x = torch.randn(23, 5)
    o = layer.logits(x)
    for name in MANY_LOSSES:
        scores = class_scores(name, o)
        y = scores.topk(3, dim=1).indices[:, 2]  # third-ranked class: a top-10 hit, not top-1
        y[:5] = scores.argmax(1)[:5]  # five top-1 hits
        y[5:8] = scores.argmin(1)[5:8]  # three misses even at top-10 (30 classes)
        hit1, hit10 = many_class_hits(body, layer, name, x, y, chunk=4)
        assert (hit1, hit10) == (5, 20), name


def _tiny_config(**kw: Any) -> ManyClassConfig:
    base: dict[str, Any] = {
        "dim": 8,
        "num_classes": 40,
        "train_size": 300,
        "val_size": 50,
        "test_size": 60,
        "steps": 4,
        "batch": 32,
    }
    base.update(kw)
    return ManyClassConfig(**base)


def _ctx() -> RunContext:
    return RunContext(seeds=[0, 1], device=torch.device("cpu"), budget="smoke")


def test_many_class_runs_shapes_pairing_and_test_only_for_selected() -> None:
    runs = ManyClassRuns(_tiny_config(), _ctx())
    x_tr, y_tr, x_val, y_val, x_te, y_te = runs.data(0)
    assert x_tr.shape == (300, 8) and x_val.shape == (50, 8) and x_te.shape == (60, 8)
    assert y_tr.shape == (300,) and y_val.shape == (50,) and int(y_te.max()) < 40
    val = runs.val("z-loss", {"a": 1.0, "b": 0.0}, 0.5, [0, 1])
    assert len(val) == 2 and all(0.0 <= v <= 1.0 for v in val)
    # same seed, same loss and hyper-parameters: the same initialisation and batches
    b1, l1, ok1 = runs.train("spherical-mse", {}, 0.01, 0)
    b2, l2, ok2 = runs.train("spherical-mse", {}, 0.01, 0)
    assert ok1 and ok2
    assert torch.equal(l1.weight(), l2.weight())
    assert all(torch.equal(p, q) for p, q in zip(b1.parameters(), b2.parameters(), strict=True))
    res = runs.test("z-loss", {"a": 1.0, "b": 0.0}, 0.5, [0, 1])
    assert len(res) == 2 and all(0.0 <= t1 <= t10 <= 1.0 for t1, t10 in res)
    with pytest.raises(KeyError):  # never trained on validation, so never tested
        runs.test("z-loss", {"a": 2.0, "b": 0.0}, 0.5, [0])


def test_a_diverged_many_class_run_scores_zero_and_is_recorded() -> None:
    runs = ManyClassRuns(_tiny_config(steps=30), _ctx())
    assert runs.val("spherical-mse", {}, 1e6, [0]) == [0.0]
    assert runs.diverged == ["spherical-mse lr=1e+06 seed 0"]
    assert runs.test("spherical-mse", {}, 1e6, [0]) == [(0.0, 0.0)]


def test_many_runs_end_to_end_gives_rows_and_both_checks() -> None:
    config = _tiny_config(
        lr_grid=(0.5,),
        lr=0.5,
        a_grid=(1.0,),
        b_grid=(0.0,),
        eps_grid=(0.01,),
    )
    rows, checks, extra = run_many(config, _ctx())
    for name in MANY_LOSSES:
        for metric in ("test_top1", "test_top10", "val_top1"):
            row = find_row(rows, f"A2 {name}", metric)
            assert len(row.values) == 2
    assert [c.name.split(" at ")[0] for c in checks] == [
        "A2: z-loss no worse than the other spherical losses"
    ] * 2
    assert "D = 40" in checks[0].name
    assert set(extra["many_classes_paired_test_top1_z_minus"]) == set(SPHERICAL_LOSSES) - {"z-loss"}  # type: ignore[arg-type]
