"""The reproduction's parts: the stack equals separate networks, config validation, a tiny run."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from paperzoo.anyloss._stack import MLPStack
from paperzoo.anyloss.experiment import (
    EXPERIMENT,
    AnyLossConfig,
    load_binary,
    run,
)
from paperzoo.anyloss.losses import anyloss
from paperzoo.core.checks import UserError
from paperzoo.core.experiments import RunContext, get_experiment


def test_every_stack_member_trains_exactly_like_a_network_alone() -> None:
    """Adam on the summed losses of the stack == Adam on each member's loss alone."""
    torch.manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64)
    y = (torch.rand(40) < 0.3).double()
    y[:2] = torch.tensor([0.0, 1.0])
    stack = MLPStack(3, 5, 4, seed=1).double()
    alone = [copy.deepcopy(stack.member(m)).double() for m in range(3)]
    fns = [
        lambda z, t: F.binary_cross_entropy_with_logits(z, t),
        lambda z, t: anyloss(z, t, "f1", validate=False),
        lambda z, t: anyloss(z, t, "balanced_accuracy", L=10.0, validate=False),
    ]
    opt = torch.optim.Adam(stack.parameters(), lr=1e-2)
    opts = [torch.optim.Adam(a.parameters(), lr=1e-2) for a in alone]
    for step in range(5):
        xb, yb = x[step * 8 : step * 8 + 8], y[step * 8 : step * 8 + 8]
        z = stack(xb)
        opt.zero_grad()
        torch.stack([fn(z[:, m], yb) for m, fn in enumerate(fns)]).sum().backward()
        opt.step()
        for a, o, fn in zip(alone, opts, fns, strict=True):
            o.zero_grad()
            fn(a(xb)[:, 0], yb).backward()
            o.step()
    stack.eval()
    for m, a in enumerate(alone):
        a.eval()
        torch.testing.assert_close(stack(x)[:, m], a(x)[:, 0], rtol=1e-8, atol=1e-10)


def test_members_start_from_the_same_weights() -> None:
    stack = MLPStack(4, 3, 5, seed=0)
    x = torch.randn(6, 3)
    out = stack.eval()(x)
    for m in range(1, 4):
        torch.testing.assert_close(out[:, m], out[:, 0])


def test_datasets_are_binary_with_the_spec_imbalance() -> None:
    x, y = load_binary("imb5", 10000)
    assert x.shape == (10000, 5) and 0.09 < y.mean() < 0.11
    x, y = load_binary("digits0")
    assert x.shape == (1797, 64) and 0.09 < y.mean() < 0.11
    x, y = load_binary("breast_cancer")
    assert x.shape == (569, 30) and set(y.tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"datasets": "imb5,mnist"}, "datasets"),
        ({"methods": "bce,focal"}, "methods"),
        ({"methods": ""}, "methods"),
        ({"n_folds": 1}, "n_folds"),
        ({"epochs": 0}, "epochs"),
        ({"batch_frac": 0.0}, "batch_frac"),
        ({"batch_frac": 1.5}, "batch_frac"),
        ({"l_values": (4.0, -1.0)}, "l_values"),
        ({"sweep_pca": 7}, "sweep_pca"),
        ({"threshold": 1.0}, "threshold"),
        ({"n_samples": 10}, "n_samples"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_config_values_raise_naming_the_field(change: dict[str, object], name: str) -> None:
    with pytest.raises(UserError, match=f"^{name}"):
        AnyLossConfig(**change)  # type: ignore[arg-type]


def test_wrong_config_types_raise_type_errors() -> None:
    with pytest.raises(TypeError, match="^epochs"):
        AnyLossConfig(epochs=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^l_sweep"):
        AnyLossConfig(l_sweep=1)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="n_folds"):
        EXPERIMENT.make_config("quick", ["n_folds=one"])


def test_registered_with_budgets_and_enough_seeds() -> None:
    exp = get_experiment("anyloss")
    assert exp is EXPERIMENT
    assert exp.seeds["quick"] >= 3
    for budget in ("smoke", "quick", "full"):
        assert isinstance(exp.make_config(budget), AnyLossConfig)


def test_a_tiny_run_gives_rows_checks_and_the_l_curve() -> None:
    cfg = dataclasses.replace(
        EXPERIMENT.make_config("smoke"),
        datasets="imb5",
        methods="bce,anyloss_f1,anyloss_gmean",
        n_samples=300,
        epochs=1,
        l_values=(4.0, 73.0),
    )
    res = run(cfg, RunContext(seeds=[0], device=torch.device("cpu"), budget="smoke"))
    methods = {r.method for r in res.rows}
    assert {"BCE", "AnyLoss-F1", "AnyLoss-G-mean", "AnyLoss-F1 L=4", "AnyLoss-F1 L=73"} <= methods
    assert all(0.0 <= v <= 1.0 for r in res.rows for v in r.values)
    assert [c.name.split(" (")[0] for c in res.checks] == [
        "imb5: AnyLoss-F1 > BCE on f1",
        "imb5: AnyLoss-G-mean >= BCE on gmean",
    ]
    assert res.curves["l_sweep"].x == [4.0, 73.0]
    assert set(res.curves["l_sweep"].series) == {"AnyLoss-F1", "BCE", "WBCE"}
