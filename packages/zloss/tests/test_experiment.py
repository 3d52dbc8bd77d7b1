"""The reproduction's selection and prediction rules (part A), without training."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from paperzoo.core.experiments import RunContext, find_row
from paperzoo.zloss import FactoredSphericalLinear
from paperzoo.zloss import experiment as ex
from paperzoo.zloss.losses import SPHERICAL_LOSSES


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


# ----------------------------------------------------------------------------- A2: many classes


def test_class_scores_keep_the_shape_and_match_the_predictor() -> None:
    o = torch.randn(4, 7)
    for name in ex._QUALITY_LOSSES:
        scores = ex._class_scores(name, o)
        assert scores.shape == (4, 7), name
        assert torch.equal(scores, ex._Predictor(nn.Identity(), name)(o)), name


def test_many_class_grid_covers_every_stats_loss() -> None:
    config = ex.ZLossConfig()
    assert set(ex._MANY_LOSSES) == set(SPHERICAL_LOSSES)
    z = ex._many_loss_grid(config, "z-loss")
    assert len(z) == len(config.many_a_grid) * len(config.many_b_grid)
    assert {"a": 1.0, "b": 0.0} in z
    assert len(ex._many_loss_grid(config, "log-spherical-softmax")) == len(config.many_eps_grid)
    assert ex._many_loss_grid(config, "spherical-mse") == [{}]
    assert ex._many_loss_grid(config, "log-taylor-softmax") == [{}]
    assert config.many_lr in config.many_lr_grid
    with pytest.raises(ValueError, match="unknown"):
        ex._many_loss_grid(config, "cross-entropy")  # no stats form: not in A2


def test_selection_with_a2_grids_reads_validation_only() -> None:
    config = ex.ZLossConfig()
    table = {
        ("a=2,b=5", 1.0): 0.6,  # best (a, b) at the A2 base lr
        ("a=2,b=5", 0.1): 0.7,  # then its best lr
        ("a=1,b=0", 0.01): 0.9,  # not reachable: (a, b) is chosen at the base lr
        ("a=1,b=0", 1.0): 0.5,
    }
    runs = _FakeRuns(config, table)
    sel = ex._select(
        runs,  # type: ignore[arg-type]
        "z-loss",
        [0, 1, 2],
        grid=ex._many_loss_grid(config, "z-loss"),
        base_lr=config.many_lr,
        lr_grid=config.many_lr_grid,
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
    for name in ex._MANY_LOSSES:
        scores = ex._class_scores(name, o)
        y = scores.topk(3, dim=1).indices[:, 2]  # third-ranked class: a top-10 hit, not top-1
        y[:5] = scores.argmax(1)[:5]  # five top-1 hits
        y[5:8] = scores.argmin(1)[5:8]  # three misses even at top-10 (30 classes)
        hit1, hit10 = ex._many_class_hits(body, layer, name, x, y, chunk=4)
        assert (hit1, hit10) == (5, 20), name


def _tiny_config(**kw: object) -> ex.ZLossConfig:
    base: dict[str, object] = {
        "dim": 8,
        "many_classes": 40,
        "many_train_size": 300,
        "many_val_size": 50,
        "many_test_size": 60,
        "many_steps": 4,
        "many_batch": 32,
    }
    base.update(kw)
    return ex.ZLossConfig(**base)  # type: ignore[arg-type]


def _ctx() -> RunContext:
    return RunContext(seeds=[0, 1], device=torch.device("cpu"), budget="smoke")


def test_many_class_runs_shapes_pairing_and_test_only_for_selected() -> None:
    runs = ex._ManyClassRuns(_tiny_config(), _ctx())
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
    runs = ex._ManyClassRuns(_tiny_config(many_steps=30), _ctx())
    assert runs.val("spherical-mse", {}, 1e6, [0]) == [0.0]
    assert runs.diverged == ["spherical-mse lr=1e+06 seed 0"]
    assert runs.test("spherical-mse", {}, 1e6, [0]) == [(0.0, 0.0)]


def test_many_runs_end_to_end_gives_rows_and_both_checks() -> None:
    config = _tiny_config(
        many_lr_grid=(0.5,),
        many_lr=0.5,
        many_a_grid=(1.0,),
        many_b_grid=(0.0,),
        many_eps_grid=(0.01,),
    )
    rows, checks, extra = ex._many(config, _ctx())
    for name in ex._MANY_LOSSES:
        for metric in ("test_top1", "test_top10", "val_top1"):
            row = find_row(rows, f"A2 {name}", metric)
            assert len(row.values) == 2
    assert [c.name.split(" at ")[0] for c in checks] == [
        "A2: z-loss no worse than the other spherical losses"
    ] * 2
    assert "D = 40" in checks[0].name
    assert set(extra["many_classes_paired_test_top1_z_minus"]) == set(SPHERICAL_LOSSES) - {"z-loss"}  # type: ignore[arg-type]
